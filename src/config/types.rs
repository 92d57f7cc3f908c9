//! The value types of the configuration: parsed once, when the file is read,
//! so no component re-parses a string (and nothing can `expect` on it later).

use std::{borrow::Cow, fmt, net::SocketAddr, path::PathBuf, str::FromStr};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Where the gRPC server listens: `HOST:PORT`, or `unix:///path/to.sock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        if let Some(path) = value.strip_prefix("unix://") {
            if path.is_empty() {
                return Err("unix:// needs a socket path (unix:///path/to.sock)".into());
            }
            return Ok(ListenAddr::Unix(path.into()));
        }
        value.parse().map(ListenAddr::Tcp).map_err(|_| {
            format!("{value:?} is not HOST:PORT (e.g. 0.0.0.0:50051) or unix:///path/to.sock")
        })
    }
}

impl TryFrom<String> for ListenAddr {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        value.parse()
    }
}

impl From<ListenAddr> for String {
    fn from(addr: ListenAddr) -> String {
        addr.to_string()
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

impl JsonSchema for ListenAddr {
    fn schema_name() -> Cow<'static, str> {
        "ListenAddr".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^(unix:///.+|\\[[0-9A-Fa-f:.]+\\]:[0-9]{1,5}|[0-9.]+:[0-9]{1,5})$",
            "description": "HOST:PORT (an IP address and a port) or unix:///path/to.sock",
        })
    }
}

/// A signature algorithm a token may use: RSA PKCS#1 v1.5 only. `none` and
/// the HMAC algorithms cannot be named (an HS256 token signed with the public
/// key as its secret is the classic confusion attack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum SigningAlgorithm {
    Rs256,
    Rs384,
    Rs512,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 3] = [Self::Rs256, Self::Rs384, Self::Rs512];

    /// Parses a JOSE `alg` name; `None` for everything not RSA PKCS#1 v1.5.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
        }
    }
}

impl TryFrom<String> for SigningAlgorithm {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        Self::from_name(&value).ok_or_else(|| {
            format!(
                "{:?} is not allowed: only RS256, RS384 and RS512 (Cognito signs with RS256)",
                crate::text::bounded(&value, 40)
            )
        })
    }
}

impl From<SigningAlgorithm> for &'static str {
    fn from(alg: SigningAlgorithm) -> &'static str {
        alg.name()
    }
}

impl JsonSchema for SigningAlgorithm {
    fn schema_name() -> Cow<'static, str> {
        "SigningAlgorithm".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "enum": ["RS256", "RS384", "RS512"] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_round_trip_through_their_text() {
        for text in ["0.0.0.0:50051", "[::1]:9", "unix:///tmp/tv.sock"] {
            let addr: ListenAddr = text.parse().unwrap();
            assert_eq!(addr.to_string(), text);
        }
        assert_eq!(
            "unix:///tmp/tv.sock".parse::<ListenAddr>().unwrap(),
            ListenAddr::Unix("/tmp/tv.sock".into())
        );
        for bad in ["nope", "unix://", "localhost:50051", "1.2.3.4"] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_rsa_algorithms_have_a_value() {
        assert_eq!(
            SigningAlgorithm::try_from("RS384".to_string()),
            Ok(SigningAlgorithm::Rs384)
        );
        for bad in ["HS256", "none", "ES256", "rs256"] {
            let error = SigningAlgorithm::try_from(bad.to_string()).unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
    }
}
