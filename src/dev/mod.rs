//! The embedded local issuer: a stand-in Cognito user pool on loopback, so the
//! service can be tried (and tested) without an AWS account.
//!
//! It generates an RSA key in memory, serves the pool's JWKS, mints ID and
//! access tokens shaped like Cognito's, and answers Cognito's GetUser for the
//! users it minted tokens for (revoked tokens get `NotAuthorizedException`).
//!
//! Routes: `GET /{pool}/.well-known/jwks.json`, `POST /` (GetUser, AWS JSON 1.1),
//! `POST /dev/tokens` (mint), `POST /dev/revoke` (revoke an access token).

mod routes;
mod signing;
mod state;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use signing::SigningKey;
pub use state::DevState;

use crate::{
    config::{Config, ListenAddr, PoolConfig, RevocationCheck, RevocationConfig},
    jwks::KeySet,
    validate::unix_now,
};

/// What to mint; every field has a dev default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MintRequest {
    pub username: Option<String>,
    pub groups: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    /// Seconds from now; negative for an already expired token. At most
    /// [`MAX_EXPIRES_IN_SECS`] either way.
    pub expires_in: Option<i64>,
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    /// Extra user attributes, e.g. `custom:tenant`.
    pub attributes: BTreeMap<String, String>,
}

/// Bound of `expires_in` either way: ten years, far past any test's need and
/// far from where `now + expires_in` could overflow.
pub const MAX_EXPIRES_IN_SECS: i64 = 10 * 365 * 24 * 3600;

impl MintRequest {
    /// Why this request cannot be minted, naming the field.
    pub fn problem(&self) -> Option<String> {
        match self.expires_in {
            Some(secs) if secs.unsigned_abs() > MAX_EXPIRES_IN_SECS.unsigned_abs() => {
                Some(format!(
                    "expires_in: {secs} is out of range (-{MAX_EXPIRES_IN_SECS}..={MAX_EXPIRES_IN_SECS} seconds)"
                ))
            }
            _ => None,
        }
    }
}

/// An ID token and an access token for one sign-in.
#[derive(Debug, Clone, Serialize)]
pub struct MintedTokens {
    pub id_token: String,
    pub access_token: String,
}

pub const DEV_REGION: &str = "us-east-1";
pub const DEV_USER_POOL_ID: &str = "us-east-1_localdev";
pub const DEV_CLIENT_ID: &str = "localdevclient0000000000001";
pub const DEV_USERNAME: &str = "dev-user";

struct User {
    sub: String,
    attributes: BTreeMap<String, String>,
    /// `AdminDisableUser`: GetUser refuses the user's tokens, AdminGetUser says `Enabled: false`.
    enabled: bool,
}

struct IssuerState {
    key: SigningKey,
    /// The key's JWKS document and its parsed form, made once: what the
    /// JWKS route serves and what GetUser checks tokens with.
    jwks: Value,
    public: KeySet,
    issuer: String,
    users: Mutex<HashMap<String, User>>,
    revoked: Mutex<HashSet<String>>,
}

/// What `POST /dev/users/{name}/{change}` does to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    Disable,
    Enable,
    Delete,
}

/// A local user pool serving on loopback.
#[derive(Clone)]
pub struct DevIssuer {
    state: Arc<IssuerState>,
    addr: SocketAddr,
}

fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl DevIssuer {
    /// Binds `addr` (e.g. `127.0.0.1:0`) and serves the issuer in a background task.
    pub async fn start(addr: SocketAddr) -> anyhow::Result<Self> {
        Self::start_with(addr, None).await
    }

    /// Like [`DevIssuer::start`], signing with `key` (kept by `--state-dir`)
    /// or a new one.
    pub async fn start_with(addr: SocketAddr, key: Option<SigningKey>) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let key = match key {
            Some(key) => key,
            None => SigningKey::generate(format!("dev-{}", &random_id()[..8]))?,
        };
        let jwks = json!({ "keys": [key.jwk()] });
        let state = Arc::new(IssuerState {
            public: KeySet::from_json(jwks.to_string().as_bytes())?,
            jwks,
            key,
            issuer: format!("http://{addr}/{DEV_USER_POOL_ID}"),
            users: Mutex::new(HashMap::new()),
            revoked: Mutex::new(HashSet::new()),
        });
        let router = routes::router(state.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "dev issuer stopped");
            }
        });
        Ok(Self { state, addr })
    }

    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.state.key
    }

    /// The pool entry that trusts this issuer.
    /// Its revocation check answers on request (`check_revocation`), against
    /// this issuer's GetUser and AdminGetUser, so off-boarding can be tried
    /// without AWS: `/dev/revoke`, `/dev/users/{name}/disable` or `/delete`.
    pub fn pool_config(&self) -> PoolConfig {
        PoolConfig {
            client_ids: vec![DEV_CLIENT_ID.into()],
            issuer: Some(self.issuer().to_string()),
            revocation: RevocationConfig {
                check: RevocationCheck::OnRequest,
                endpoint: Some(format!("http://{}/", self.addr)),
                ..RevocationConfig::default()
            },
            ..PoolConfig::new("dev", DEV_REGION, DEV_USER_POOL_ID)
        }
    }

    /// Makes `config` trust this issuer (its pool added) and use it for GetUser.
    pub fn trust_in(&self, config: &mut Config) {
        config.pools.push(self.pool_config());
        config.userinfo.cognito_endpoint = format!("http://{}/", self.addr);
    }

    /// A service configuration trusting this issuer and using it for GetUser.
    pub fn service_config(&self, listen: ListenAddr) -> Config {
        let mut config = Config {
            listen,
            pools: vec![self.pool_config()],
            ..Config::default()
        };
        config.userinfo.cognito_endpoint = format!("http://{}/", self.addr);
        config.metrics.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config
    }

    /// Mints an ID and an access token for a user, remembering the user for GetUser.
    pub fn mint(&self, request: &MintRequest) -> MintedTokens {
        self.state.mint(request)
    }

    /// Makes GetUser refuse this access token from now on (like Cognito's RevokeToken).
    pub fn revoke(&self, access_token: &str) -> bool {
        self.state.revoke(access_token)
    }

    /// Disables, enables or deletes a user (`POST /dev/users/{name}/…`).
    pub fn change_user(&self, username: &str, change: UserChange) -> bool {
        self.state.change_user(username, change)
    }
}

impl IssuerState {
    /// Mints an ID and an access token for a user, remembering the user for GetUser.
    pub fn mint(&self, request: &MintRequest) -> MintedTokens {
        let username = request
            .username
            .clone()
            .unwrap_or_else(|| DEV_USERNAME.into());
        let now = unix_now();
        let expires_in = request
            .expires_in
            .unwrap_or(3600)
            .clamp(-MAX_EXPIRES_IN_SECS, MAX_EXPIRES_IN_SECS);
        let exp = now.saturating_add(expires_in);
        let groups = request
            .groups
            .clone()
            .unwrap_or_else(|| vec!["admin".into(), "users".into()]);
        let scopes = request.scopes.clone().unwrap_or_else(|| {
            [
                "openid",
                "email",
                "profile",
                "aws.cognito.signin.user.admin",
            ]
            .map(String::from)
            .to_vec()
        });
        let attributes = self.remember_user(&username, request);

        // What both tokens of one sign-in share; each adds its own claims.
        let session = json!({
            "sub": attributes["sub"],
            "iss": self.issuer.as_str(),
            "cognito:groups": groups,
            "auth_time": now,
            "iat": now,
            "exp": exp,
            "origin_jti": random_id(),
        });
        let with = |extra: Value| {
            let mut claims = session.clone();
            if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
                claims.extend(extra);
            }
            claims["jti"] = random_id().into();
            claims["event_id"] = random_id().into();
            claims
        };
        let mut id_claims = with(json!({
            "aud": DEV_CLIENT_ID,
            "token_use": "id",
            "cognito:username": username,
        }));
        for (name, value) in &attributes {
            id_claims[name] = if name == "email_verified" {
                Value::Bool(value == "true")
            } else {
                Value::String(value.clone())
            };
        }
        let access_claims = with(json!({
            "client_id": DEV_CLIENT_ID,
            "token_use": "access",
            "scope": scopes.join(" "),
            "username": username,
            "version": 2,
        }));
        MintedTokens {
            id_token: self.key.sign_claims(&id_claims),
            access_token: self.key.sign_claims(&access_claims),
        }
    }

    /// The user's attributes for this mint (defaults, then the request's),
    /// remembered for GetUser; a new user gets a new `sub`.
    fn remember_user(&self, username: &str, request: &MintRequest) -> BTreeMap<String, String> {
        let mut users = self.users.lock().expect("not poisoned");
        let user = users.entry(username.to_string()).or_insert_with(|| User {
            sub: random_id(),
            attributes: BTreeMap::new(),
            enabled: true,
        });
        let mut attributes = BTreeMap::from([
            ("sub".to_string(), user.sub.clone()),
            (
                "email".to_string(),
                request
                    .email
                    .clone()
                    .unwrap_or_else(|| format!("{username}@example.com")),
            ),
            ("email_verified".to_string(), "true".to_string()),
            (
                "preferred_username".to_string(),
                request.preferred_username.clone().unwrap_or_else(|| {
                    if username == DEV_USERNAME {
                        "Dev User".into()
                    } else {
                        username.to_string()
                    }
                }),
            ),
        ]);
        attributes.extend(request.attributes.clone());
        user.attributes = attributes.clone();
        attributes
    }

    /// Disables, enables or deletes a user, as `AdminDisableUser`,
    /// `AdminEnableUser` and `AdminDeleteUser` do; false if there is no such user.
    pub fn change_user(&self, username: &str, change: UserChange) -> bool {
        let mut users = self.users.lock().expect("not poisoned");
        match change {
            UserChange::Delete => users.remove(username).is_some(),
            UserChange::Disable | UserChange::Enable => match users.get_mut(username) {
                Some(user) => {
                    user.enabled = change == UserChange::Enable;
                    true
                }
                None => false,
            },
        }
    }

    /// Makes GetUser refuse this access token from now on (like Cognito's RevokeToken/GlobalSignOut).
    pub fn revoke(&self, access_token: &str) -> bool {
        match routes::verify_own(self, access_token) {
            Some(claims) => {
                let jti = claims["jti"].as_str().unwrap_or_default().to_string();
                self.revoked.lock().expect("not poisoned").insert(jti);
                true
            }
            None => false,
        }
    }
}

/// The issuer of [`offline_app`]'s pool.
pub const OFFLINE_ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_offline";

/// A service trusting one pool whose key set is `keys`, installed directly (no
/// HTTP): for fuzzing, property tests and micro-benchmarks. Its JWKS URL is a
/// closed loopback port, so an unknown-kid refetch fails fast. Validating needs
/// a Tokio runtime (a refetch runs as a task). Token cache off: every call checks.
/// Hidden from the docs: a harness for the fuzz target, property tests and
/// benches, not a way to run the service.
#[doc(hidden)]
pub fn offline_app(keys: &[&SigningKey]) -> anyhow::Result<crate::App> {
    let mut config = Config {
        listen: ListenAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 0))),
        pools: vec![PoolConfig {
            client_ids: vec![DEV_CLIENT_ID.into()],
            jwks_url: Some("http://127.0.0.1:9/jwks.json".into()),
            ..PoolConfig::new("offline", DEV_REGION, "us-east-1_offline")
        }],
        ..Config::default()
    };
    config.metrics.enabled = false;
    config.token_cache.enabled = false;
    config.userinfo.cognito_lookup = false;
    config.jwks.fetch_timeout_ms = 200;
    let app = crate::App::new(config)?;
    let document = json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
    app.keys
        .install(0, KeySet::from_json(document.to_string().as_bytes())?);
    Ok(app)
}
