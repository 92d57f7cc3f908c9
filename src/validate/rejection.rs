//! Why a token is not accepted. One enum, mapped to the proto's `Reason` once,
//! in the gRPC layer.

use std::borrow::Cow;

use crate::text::bounded;

/// The reasons a token can be rejected, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Malformed,
    UnsupportedAlgorithm,
    UnknownIssuer,
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    WrongClient,
    WrongTokenUse,
    MissingScope,
    MissingGroup,
    /// Cognito no longer accepts the token or its user: signed out everywhere,
    /// refresh token revoked, user disabled or deleted. Only an online check
    /// (GetUser) can see it; offline validation never answers it.
    Revoked,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::Malformed,
        Reason::UnsupportedAlgorithm,
        Reason::UnknownIssuer,
        Reason::UnknownKey,
        Reason::BadSignature,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::WrongClient,
        Reason::WrongTokenUse,
        Reason::MissingScope,
        Reason::MissingGroup,
        Reason::Revoked,
    ];

    /// A stable lower-case name, used in metrics, logs and status messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::UnsupportedAlgorithm => "unsupported_algorithm",
            Reason::UnknownIssuer => "unknown_issuer",
            Reason::UnknownKey => "unknown_key",
            Reason::BadSignature => "bad_signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::WrongClient => "wrong_client",
            Reason::WrongTokenUse => "wrong_token_use",
            Reason::MissingScope => "missing_scope",
            Reason::MissingGroup => "missing_group",
            Reason::Revoked => "revoked",
        }
    }
}

/// Longest message a rejection carries, in characters: it reaches callers
/// (status messages, `WWW-Authenticate`) and the audit log, so whatever a token
/// holds, one rejection costs a bounded number of bytes downstream.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// Longest `kid` or `sub` a rejection keeps for the audit log, in characters.
pub const MAX_FIELD_CHARS: usize = 64;

/// A rejected token: the reason and a short message for humans. The message
/// never contains the token, only facts about it (claim names, expected values),
/// and is at most [`MAX_MESSAGE_CHARS`] long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", reason.as_str())]
pub struct Rejection {
    pub reason: Reason,
    pub message: Cow<'static, str>,
    /// The configured pool the token claimed, once the issuer was recognised.
    pub pool: Option<crate::config::PoolId>,
    /// The header's `kid`, once parsed (for the audit log).
    pub kid: Option<String>,
    /// `sub` and `token_use`, only once the signature was verified.
    pub sub: Option<String>,
    pub token_use: Option<crate::config::TokenUse>,
}

impl Rejection {
    pub fn new(reason: Reason, message: impl Into<Cow<'static, str>>) -> Self {
        let mut message = message.into();
        // Bytes bound characters: only a long message is counted and cut.
        if message.len() > MAX_MESSAGE_CHARS && message.chars().count() > MAX_MESSAGE_CHARS {
            message = Cow::Owned(bounded(&message, MAX_MESSAGE_CHARS));
        }
        Self {
            reason,
            message,
            pool: None,
            kid: None,
            sub: None,
            token_use: None,
        }
    }

    pub(crate) fn in_pool(mut self, pool: crate::config::PoolId) -> Self {
        self.pool = Some(pool);
        self
    }

    pub(crate) fn with_kid(mut self, kid: &str) -> Self {
        self.kid = Some(bounded(kid, MAX_FIELD_CHARS));
        self
    }

    /// Adds the context of a verified token that failed the request's policy.
    pub(crate) fn about(self, token: &super::VerifiedToken) -> Self {
        self.in_pool(token.pool)
            .with_kid(&token.kid)
            .verified(token.claims.sub.as_deref(), Some(token.token_use))
    }

    /// Adds what is known once the signature is good.
    pub(crate) fn verified(
        mut self,
        sub: Option<&str>,
        token_use: Option<crate::config::TokenUse>,
    ) -> Self {
        self.sub = sub.map(|sub| bounded(sub, MAX_FIELD_CHARS));
        self.token_use = token_use;
        self
    }
}
