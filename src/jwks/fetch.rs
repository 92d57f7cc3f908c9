//! Downloads a JWKS document over HTTP(S) with hard limits: connect and total
//! timeouts, a body size cap, 2xx JSON only, no redirects. The only HTTP this
//! crate does for keys happens here, and only for URLs from the configuration.

use std::time::Duration;

use super::keyset::{KeySet, KeySetError};
use crate::{
    config::JwksConfig,
    outbound::{self, BodyError},
};

/// Why a fetch failed; [`FetchError::kind`] is the bounded label used in metrics.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out")]
    Timeout,
    #[error("HTTP {0}")]
    Status(u16),
    #[error("connection failed: {0}")]
    Transport(String),
    #[error("body larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("content-type {0:?} is not JSON")]
    NotJson(String),
    #[error(transparent)]
    Invalid(#[from] KeySetError),
}

impl FetchError {
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Timeout => "timeout",
            FetchError::Status(_) | FetchError::Transport(_) => "http_error",
            FetchError::TooLarge { .. } | FetchError::NotJson(_) | FetchError::Invalid(_) => {
                "invalid"
            }
        }
    }
}

/// An HTTP client configured for key fetches.
#[derive(Clone)]
pub struct JwksFetcher {
    client: reqwest::Client,
    max_bytes: usize,
}

impl JwksFetcher {
    pub fn new(config: &JwksConfig) -> Result<Self, reqwest::Error> {
        let client = outbound::client(
            Duration::from_millis(config.connect_timeout_ms),
            Duration::from_millis(config.fetch_timeout_ms),
        )?;
        Ok(Self {
            client,
            max_bytes: config.max_response_bytes,
        })
    }

    /// Fetches and parses the key set at `url`.
    pub async fn fetch(&self, url: &str) -> Result<KeySet, FetchError> {
        let body = self.fetch_body(url).await?;
        Ok(KeySet::from_json(&body)?)
    }

    async fn fetch_body(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        if let Some(content_type) = response.headers().get(reqwest::header::CONTENT_TYPE) {
            let content_type = content_type.to_str().unwrap_or("").to_ascii_lowercase();
            if !content_type.contains("json") {
                return Err(FetchError::NotJson(content_type));
            }
        }
        outbound::read_bounded(response, self.max_bytes)
            .await
            .map_err(|error| match error {
                BodyError::TooLarge => FetchError::TooLarge {
                    max: self.max_bytes,
                },
                BodyError::Transport(error) => transport_error(error),
            })
    }
}

fn transport_error(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Transport(outbound::error_text(&error))
    }
}
