//! The one way this service talks HTTP to others (JWKS endpoints, Cognito's
//! GetUser): a client with connect and total timeouts, no redirects and our
//! user agent; bodies read up to a bound; errors as one line each.

use std::time::Duration;

/// An HTTP client for calls to configured URLs only.
pub fn client(
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("token-validator/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads `response`'s body, refusing one over `max` bytes (by its
/// Content-Length, or as it streams in) before holding more than `max`.
pub async fn read_bounded(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport error with its causes (refused, DNS, TLS) on one line, each
/// distinct message once: "timed out" for a timeout.
pub fn error_text(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    crate::text::error_chain(error)
}
