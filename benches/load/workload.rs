//! The tokens a run sends and the answer each must get.

use rand::Rng;
use token_validator::grpc::proto::Reason;

/// What a request carries, and so what the answer must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The same valid token every time (cache hits once warm).
    Repeated,
    /// The next token of the pool (a cache miss until the pool wraps).
    Distinct,
    /// A valid token with a tampered signature: BAD_SIGNATURE.
    Invalid,
    /// A token whose `kid` is random: UNKNOWN_KEY (the refetch limiter's path).
    RandomKid,
}

impl Kind {
    pub fn expected_reason(self) -> Reason {
        match self {
            Kind::Repeated | Kind::Distinct => Reason::Unspecified,
            Kind::Invalid => Reason::BadSignature,
            Kind::RandomKid => Reason::UnknownKey,
        }
    }
}

/// Shares of each kind (the rest is `Repeated`).
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    pub distinct: f64,
    pub invalid: f64,
    pub random_kid: f64,
}

impl Mix {
    pub fn pick(&self, rng: &mut impl Rng) -> Kind {
        let x: f64 = rng.random();
        if x < self.distinct {
            Kind::Distinct
        } else if x < self.distinct + self.invalid {
            Kind::Invalid
        } else if x < self.distinct + self.invalid + self.random_kid {
            Kind::RandomKid
        } else {
            Kind::Repeated
        }
    }
}

/// The valid tokens of a run, and the derived invalid ones.
pub struct Tokens {
    valid: Vec<String>,
    invalid: String,
}

impl Tokens {
    pub fn new(valid: Vec<String>) -> anyhow::Result<Self> {
        let first = valid.first().ok_or_else(|| anyhow::anyhow!("no tokens"))?;
        // Flip one bit in the middle of the signature's bytes: still base64url, wrong signature.
        let (input, signature) = first
            .rsplit_once('.')
            .ok_or_else(|| anyhow::anyhow!("not a JWT"))?;
        let mut bytes =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)?;
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        let invalid = format!(
            "{input}.{}",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
        );
        Ok(Self { valid, invalid })
    }

    /// The token for request number `n` of kind `kind`.
    pub fn token(&self, kind: Kind, n: u64, rng: &mut impl Rng) -> String {
        match kind {
            Kind::Repeated => self.valid[0].clone(),
            Kind::Distinct => self.valid[(n as usize) % self.valid.len()].clone(),
            Kind::Invalid => self.invalid.clone(),
            Kind::RandomKid => {
                let header = format!(
                    r#"{{"alg":"RS256","kid":"flood-{:016x}"}}"#,
                    rng.random::<u64>()
                );
                let rest = self.valid[0].split_once('.').map_or("", |(_, rest)| rest);
                format!(
                    "{}.{rest}",
                    base64::Engine::encode(
                        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                        header
                    )
                )
            }
        }
    }
}
