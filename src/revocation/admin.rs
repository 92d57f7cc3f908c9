//! AdminGetUser through the AWS SDK for Rust: the standard credential chain
//! (environment, web identity / IRSA, EKS Pod Identity, ECS task role, …),
//! the pool's region, and `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER` or
//! `pools[].revocation.endpoint` for emulators. The client is built on first
//! use, so a pool that never checks ID tokens never loads credentials.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_cognitoidentityprovider::error::DisplayErrorContext;
use aws_sdk_cognitoidentityprovider::{Client, config::Credentials};
use tokio::sync::OnceCell;

use crate::config::PoolConfig;

/// What AdminGetUser says of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    Enabled,
    Disabled,
    Missing,
}

/// One pool's AdminGetUser client.
pub struct AdminLookup {
    client: OnceCell<Client>,
    region: String,
    user_pool_id: String,
    endpoint: Option<String>,
    timeout: Duration,
}

impl AdminLookup {
    pub fn new(pool: &PoolConfig, timeout: Duration) -> Self {
        Self {
            client: OnceCell::new(),
            region: pool.region.clone(),
            user_pool_id: pool.user_pool_id.clone(),
            endpoint: pool.revocation.endpoint.clone(),
            timeout,
        }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .region(Region::new(self.region.clone()))
                    .timeout_config(
                        TimeoutConfig::builder()
                            .operation_timeout(self.timeout)
                            .build(),
                    )
                    // One retry at most: a check waits on this, and the answer is cached.
                    .retry_config(RetryConfig::standard().with_max_attempts(2));
                if let Some(endpoint) = &self.endpoint {
                    loader = loader.endpoint_url(endpoint);
                    if is_loopback(endpoint) {
                        // An emulator on this host (moto, the dev pool): nothing
                        // real to sign for, and no credentials to look for.
                        loader = loader.credentials_provider(Credentials::new(
                            "local",
                            "local",
                            None,
                            None,
                            "token-validator-loopback",
                        ));
                    }
                }
                Client::new(&loader.load().await)
            })
            .await
    }

    /// Whether `username` exists and is enabled.
    pub async fn user_state(&self, username: &str) -> Result<UserState, String> {
        if username.is_empty() {
            return Err("the token names no user".into());
        }
        let answer = self
            .client()
            .await
            .admin_get_user()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .await;
        match answer {
            Ok(user) if user.enabled() => Ok(UserState::Enabled),
            Ok(_) => Ok(UserState::Disabled),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_user_not_found_exception()) =>
            {
                Ok(UserState::Missing)
            }
            Err(error) => Err(format!(
                "AdminGetUser failed: {}",
                crate::text::bounded(&DisplayErrorContext(&error).to_string(), 300)
            )),
        }
    }
}

fn is_loopback(endpoint: &str) -> bool {
    reqwest::Url::parse(endpoint).is_ok_and(|url| match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    })
}
