//! What one request demands beyond a genuine token: the kind of token, scopes
//! (all required) and groups (any one suffices). Checked on every request,
//! cache hit or not, because the same token may meet different policies.

use super::{
    rejection::{Reason, Rejection},
    verified::VerifiedToken,
};
use crate::config::TokenUse;

/// Per-request requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `None` accepts ID and access tokens.
    pub token_use: Option<TokenUse>,
    /// Every one must be in the token's `scope`.
    pub required_scopes: Vec<String>,
    /// At least one must be in the token's `cognito:groups` (any-of).
    pub required_groups: Vec<String>,
}

impl Policy {
    pub fn check(&self, token: &VerifiedToken) -> Result<(), Rejection> {
        if let Some(expected) = self.token_use
            && expected != token.token_use
        {
            return Err(Rejection::new(
                Reason::WrongTokenUse,
                format!(
                    "expected an {} token, got an {} token",
                    expected.as_str(),
                    token.token_use.as_str()
                ),
            ));
        }
        if let Some(missing) = self
            .required_scopes
            .iter()
            .find(|scope| !token.scopes.iter().any(|s| s == *scope))
        {
            return Err(Rejection::new(
                Reason::MissingScope,
                format!("scope {} is required", super::token::printable(missing)),
            ));
        }
        if !self.required_groups.is_empty()
            && !self
                .required_groups
                .iter()
                .any(|group| token.groups().iter().any(|g| g == group))
        {
            return Err(Rejection::new(
                Reason::MissingGroup,
                "the user is in none of the required groups",
            ));
        }
        Ok(())
    }
}
