//! Revocation and off-boarding: the opt-in online check of a verified token.
//!
//! A signed-out, disabled or deleted user's tokens stay cryptographically
//! valid until `exp`; only Cognito knows otherwise, so this asks it:
//! - an **access token** through GetUser with the token itself (no AWS
//!   credentials; `NotAuthorizedException`: signed out everywhere, token
//!   revoked, user disabled or deleted), the userinfo layer's client and
//!   cache, so GetUserInfo and this share their answers;
//! - an **ID token** through AdminGetUser (IAM credentials, the AWS SDK):
//!   a user missing or `Enabled: false` is revoked. An ID token's own
//!   sign-out cannot be asked for, so once an access token is found revoked
//!   its `origin_jti` (the sign-in) is remembered, and ID tokens of the same
//!   sign-in are refused too, for as long as either could be valid (1 day,
//!   Cognito's longest token life).
//!
//! Answers ("active" or "revoked") are cached per token for the pool's
//! `cache_ttl_secs`, never past `exp`; concurrent first checks of one token
//! share one call; each pool's calls are capped per second. When Cognito
//! cannot be asked, the pool's `on_error` decides: deny (UNAVAILABLE) or
//! allow (the offline answer, counted and logged).

mod admin;

use std::{sync::Arc, time::Duration};

use admin::{AdminLookup, UserState};
use tracing::Instrument;

use crate::{
    config::{PoolConfig, PoolId, RevocationCheck, RevocationOnError, TokenUse, UserInfoConfig},
    rate::TokenBucket,
    userinfo::{UserInfoError, UserInfoService},
    validate::{
        Expiring, PerEntryTtl, TokenHash, VerifiedToken, hash_prefix, ttl_until_exp, unix_now,
    },
};

/// How long a revoked sign-in (`origin_jti`) is remembered: Cognito's
/// longest ID and access token life, so no token of it outlives the memory.
const SIGN_IN_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// Bound on remembered answers and revoked sign-ins.
const MAX_ENTRIES: u64 = 200_000;

/// Events the check reports (metrics hang off these).
pub trait RevocationObserver: Send + Sync {
    /// A Cognito call ended: `kind` `get_user` or `admin_get_user`, `result`
    /// `active`, `revoked`, `error` or `throttled`.
    fn revocation_lookup(
        &self,
        kind: &'static str,
        result: &'static str,
        elapsed: Option<Duration>,
    );
    /// An answer came from the cache (`origin_jti`: from a revoked sign-in).
    fn revocation_cache_hit(&self, origin_jti: bool);
    /// Cognito could not be asked and `on_error: allow` let the token through.
    fn revocation_fallback(&self);
}

/// Why a token did not pass the check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    #[error("{0}")]
    Revoked(String),
    #[error("Cognito cannot be asked whether the token was revoked: {0}")]
    Unavailable(String),
}

/// A cached answer.
#[derive(Debug, Clone)]
enum Answer {
    Active,
    Revoked(Arc<str>),
}

struct PoolRevocation {
    check: RevocationCheck,
    cache_ttl: Duration,
    on_error: RevocationOnError,
    bucket: TokenBucket,
    admin: AdminLookup,
}

/// The revocation checks of every pool.
pub struct Revocation {
    pools: Vec<PoolRevocation>,
    answers: moka::future::Cache<TokenHash, Expiring<Answer>>,
    revoked_sign_ins: moka::sync::Cache<String, ()>,
    userinfo: Arc<UserInfoService>,
    observer: Arc<dyn RevocationObserver>,
}

impl Revocation {
    pub fn new(
        pools: &[PoolConfig],
        userinfo_config: &UserInfoConfig,
        userinfo: Arc<UserInfoService>,
        observer: Arc<dyn RevocationObserver>,
    ) -> Self {
        let timeout = Duration::from_millis(userinfo_config.timeout_ms);
        Self {
            pools: pools
                .iter()
                .map(|pool| PoolRevocation {
                    check: pool.revocation.check,
                    cache_ttl: Duration::from_secs(pool.revocation.cache_ttl_secs),
                    on_error: pool.revocation.on_error,
                    bucket: TokenBucket::new(pool.revocation.max_lookups_per_sec),
                    admin: AdminLookup::new(pool, timeout),
                })
                .collect(),
            answers: moka::future::Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .expire_after(PerEntryTtl)
                .build(),
            revoked_sign_ins: moka::sync::Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(SIGN_IN_MEMORY)
                .build(),
            userinfo,
            observer,
        }
    }

    /// Whether a token of `pool` is checked: `requested` by the caller where
    /// the pool allows it, or always.
    pub fn applies(&self, pool: PoolId, requested: bool) -> bool {
        match self.pools.get(pool).map(|p| p.check) {
            Some(RevocationCheck::Always) => true,
            Some(RevocationCheck::OnRequest) => requested,
            _ => false,
        }
    }

    /// Asks (or remembers) whether `token` (`raw`, without `Bearer `) was revoked.
    pub async fn check(
        &self,
        token: &VerifiedToken,
        raw: &str,
        hash: TokenHash,
    ) -> Result<(), RevocationError> {
        if let Some(origin) = &token.claims.origin_jti
            && self.revoked_sign_ins.contains_key(origin)
        {
            self.observer.revocation_cache_hit(true);
            return Err(RevocationError::Revoked(
                "the token's sign-in was revoked (its access token was refused by Cognito)".into(),
            ));
        }
        if let Some(hit) = self.answers.get(&hash).await {
            self.observer.revocation_cache_hit(false);
            return hit.value.into_result();
        }
        let pool = &self.pools[token.pool];
        let answer = self
            .answers
            .try_get_with(hash, async {
                let answer = self.ask(pool, token, raw, hash).await?;
                if let (Answer::Revoked(message), TokenUse::Access) = (&answer, token.token_use)
                    && ends_sign_in(message)
                {
                    self.remember_revoked_sign_in(token);
                }
                let ttl = ttl_until_exp(pool.cache_ttl, token.expires_at(), unix_now());
                Ok::<_, String>(Expiring { value: answer, ttl })
            })
            .await;
        match answer {
            Ok(entry) => entry.value.into_result(),
            Err(error) => match pool.on_error {
                RevocationOnError::Deny => Err(RevocationError::Unavailable((*error).clone())),
                RevocationOnError::Allow => {
                    self.observer.revocation_fallback();
                    tracing::warn!(
                        token = %hash_prefix(&hash),
                        %error,
                        "revocation check failed; on_error: allow, the offline answer stands"
                    );
                    Ok(())
                }
            },
        }
    }

    /// What GetUserInfo learned: Cognito refused this access token (`message`).
    pub fn note_refused_access_token(&self, token: &VerifiedToken, message: &str) {
        if token.token_use == TokenUse::Access && ends_sign_in(message) {
            self.remember_revoked_sign_in(token);
        }
    }

    fn remember_revoked_sign_in(&self, token: &VerifiedToken) {
        if let Some(origin) = &token.claims.origin_jti {
            self.revoked_sign_ins.insert(origin.clone(), ());
        }
    }

    /// One call to Cognito (rate-capped): the token's answer, or why none.
    async fn ask(
        &self,
        pool: &PoolRevocation,
        token: &VerifiedToken,
        raw: &str,
        hash: TokenHash,
    ) -> Result<Answer, String> {
        let kind = match token.token_use {
            TokenUse::Access => "get_user",
            TokenUse::Id => "admin_get_user",
        };
        if !pool.bucket.try_take() {
            self.observer.revocation_lookup(kind, "throttled", None);
            return Err("more checks than revocation.max_lookups_per_sec".into());
        }
        let started = std::time::Instant::now();
        let answer = match token.token_use {
            TokenUse::Access => match self.userinfo.lookup_fresh(token, raw, hash).await {
                Ok(_) => Ok(Answer::Active),
                Err(UserInfoError::NotAuthorized(message)) => Ok(Answer::Revoked(message.into())),
                Err(UserInfoError::Lookup(message)) => Err(message),
            },
            TokenUse::Id => match pool
                .admin
                .user_state(token.username())
                .instrument(tracing::debug_span!("cognito.admin_get_user"))
                .await
            {
                Ok(UserState::Enabled) => Ok(Answer::Active),
                Ok(UserState::Disabled) => Ok(Answer::Revoked("the user is disabled".into())),
                Ok(UserState::Missing) => Ok(Answer::Revoked("the user does not exist".into())),
                Err(message) => Err(message),
            },
        };
        let result = match &answer {
            Ok(Answer::Active) => "active",
            Ok(Answer::Revoked(_)) => "revoked",
            Err(_) => "error",
        };
        self.observer
            .revocation_lookup(kind, result, Some(started.elapsed()));
        answer
    }
}

/// Whether Cognito's refusal of an access token ends its sign-in for good
/// (signed out, token revoked, user deleted), so the sign-in's ID tokens are
/// refused too. "User is disabled" is about the user's state, which
/// AdminGetUser answers for ID tokens, and which enabling the user undoes.
fn ends_sign_in(message: &str) -> bool {
    !message.contains("User is disabled")
}

impl Answer {
    fn into_result(self) -> Result<(), RevocationError> {
        match self {
            Answer::Active => Ok(()),
            Answer::Revoked(message) => Err(RevocationError::Revoked(message.to_string())),
        }
    }
}
