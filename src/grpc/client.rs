//! A small client for the CLI's `validate`, `userinfo` and `health` commands.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use super::proto;

/// Why a client call failed (not: the token is invalid). Each variant's text
/// is the whole story on one line: none has a `source`, so a report that
/// prints the chain does not repeat it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad --addr {addr:?}: {message}")]
    BadAddress { addr: String, message: String },
    #[error("cannot connect to {addr}: {cause}")]
    Connect { addr: String, cause: String },
    #[error("{}: {}", .0.code(), .0.message())]
    Status(tonic::Status),
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        ClientError::Status(status)
    }
}

/// The URL form of an address given as `HOST:PORT` (plain HTTP/2, as grpcurl,
/// Python and Node take it), `http(s)://HOST:PORT`, or a Unix socket as
/// `unix:///abs/path`, `unix:/abs/path` or `unix:relative/path`.
pub fn normalize_addr(addr: &str) -> Result<String, ClientError> {
    let bad = |message: &str| ClientError::BadAddress {
        addr: addr.into(),
        message: message.into(),
    };
    let addr = addr.trim();
    if let Some(path) = addr.strip_prefix("unix:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(bad("unix: needs a socket path"));
        }
        return Ok(format!("unix://{path}"));
    }
    match addr.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() => Ok(addr.to_string()),
        Some((scheme, _)) => Err(bad(&format!(
            "scheme {scheme:?} is not http, https or unix"
        ))),
        None if addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok()) =>
        {
            Ok(format!("http://{addr}"))
        }
        None => Err(bad("expected HOST:PORT, http(s)://HOST:PORT or unix:PATH")),
    }
}

/// Connects to the service at `addr` (any form [`normalize_addr`] takes).
pub async fn connect(addr: &str, timeout: Duration) -> Result<Channel, ClientError> {
    let addr = &normalize_addr(addr)?;
    if let Some(path) = addr.strip_prefix("unix://") {
        let path = std::path::PathBuf::from(path);
        // The URI is required by the API but unused: the connector dials the socket.
        let endpoint = Endpoint::from_static("http://localhost")
            .connect_timeout(timeout)
            .timeout(timeout);
        return endpoint
            .connect_with_connector(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }))
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.into(),
                cause: crate::text::error_chain(&source),
            });
    }
    let endpoint = Endpoint::from_shared(addr.to_string())
        .map_err(|e| ClientError::BadAddress {
            addr: addr.into(),
            message: e.to_string(),
        })?
        .connect_timeout(timeout)
        .timeout(timeout);
    endpoint
        .connect()
        .await
        .map_err(|source| ClientError::Connect {
            addr: addr.into(),
            cause: crate::text::error_chain(&source),
        })
}

pub async fn validate(
    channel: Channel,
    request: proto::ValidateTokenRequest,
) -> Result<proto::ValidateTokenResponse, ClientError> {
    let mut client = proto::token_validator_client::TokenValidatorClient::new(channel);
    Ok(client.validate_token(request).await?.into_inner())
}

pub async fn user_info(
    channel: Channel,
    token: String,
) -> Result<proto::GetUserInfoResponse, ClientError> {
    let mut client = proto::token_validator_client::TokenValidatorClient::new(channel);
    Ok(client
        .get_user_info(proto::GetUserInfoRequest { token })
        .await?
        .into_inner())
}

/// The health status of `service` ("" for the whole server).
pub async fn health(channel: Channel, service: &str) -> Result<i32, ClientError> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let response = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_string(),
        })
        .await?;
    Ok(response.into_inner().status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_taken_in_the_forms_other_grpc_tools_take() {
        let ok = |a: &str| normalize_addr(a).unwrap();
        assert_eq!(ok("127.0.0.1:50051"), "http://127.0.0.1:50051");
        assert_eq!(ok("localhost:50051"), "http://localhost:50051");
        assert_eq!(ok("[::1]:50051"), "http://[::1]:50051");
        assert_eq!(ok("http://127.0.0.1:50051"), "http://127.0.0.1:50051");
        assert_eq!(
            ok("https://tv.example.com:443"),
            "https://tv.example.com:443"
        );
        assert_eq!(ok("unix:///run/tv.sock"), "unix:///run/tv.sock");
        assert_eq!(ok("unix:/run/tv.sock"), "unix:///run/tv.sock");
        assert_eq!(ok("unix:tv.sock"), "unix://tv.sock");
        for bad in [
            "",
            "127.0.0.1",
            "ftp://x:1",
            "unix:",
            "host:port",
            "http://",
        ] {
            let error = normalize_addr(bad).unwrap_err().to_string();
            assert!(error.starts_with("bad --addr"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn a_chain_that_repeats_itself_is_said_once() {
        #[derive(Debug)]
        struct Layer(&'static str, Option<Box<Layer>>);
        impl std::fmt::Display for Layer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Layer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|l| l as _)
            }
        }
        let chain = Layer(
            "transport error",
            Some(Box::new(Layer(
                "transport error",
                Some(Box::new(Layer(
                    "tcp connect error",
                    Some(Box::new(Layer("Connection refused", None))),
                ))),
            ))),
        );
        assert_eq!(
            crate::text::error_chain(&chain),
            "transport error: tcp connect error: Connection refused"
        );
    }
}
