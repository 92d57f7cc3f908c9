//! The standard gRPC health service, fed by the key store.
//!
//! - `""` and `tokenvalidator.v1.TokenValidator`: SERVING once every
//!   *required* pool has keys (an optional pool never gates them).
//! - `tokenvalidator.v1.TokenValidator/pool/<name>`: SERVING once that pool
//!   has keys, so a probe or an alert can name a broken pool without making the
//!   whole service unready.
//!
//! Every name goes NOT_SERVING as soon as shutdown starts, so load balancers
//! stop sending before in-flight calls end.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tonic_health::{ServingStatus, server::HealthReporter};

use super::{EXT_AUTHZ_SERVICE_NAME, SERVICE_NAME};
use crate::jwks::KeyStore;

/// The health name of one pool.
pub fn pool_service_name(pool: &str) -> String {
    format!("{SERVICE_NAME}/pool/{pool}")
}

/// Reports the service's and each pool's health.
pub struct Health {
    reporter: HealthReporter,
    keys: Arc<KeyStore>,
}

impl Health {
    /// Starts every name NOT_SERVING; returns the tonic service to mount.
    pub async fn new(
        keys: Arc<KeyStore>,
    ) -> (
        Self,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (reporter, service) = tonic_health::server::health_reporter();
        let health = Self { reporter, keys };
        health.set_all(ServingStatus::NotServing).await;
        (health, service)
    }

    /// Follows readiness and each pool's keys, turning names SERVING as they
    /// become ready. The tasks end once their name is SERVING.
    pub fn spawn_watchers(&self) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::with_capacity(self.keys.pool_count() + 1);
        let (reporter, mut ready) = (self.reporter.clone(), self.keys.subscribe_ready());
        tasks.push(tokio::spawn(async move {
            if ready.wait_for(|ready| *ready).await.is_ok() {
                tracing::info!("every required pool has keys: SERVING");
                reporter
                    .set_service_status("", ServingStatus::Serving)
                    .await;
                for name in [SERVICE_NAME, EXT_AUTHZ_SERVICE_NAME] {
                    reporter
                        .set_service_status(name, ServingStatus::Serving)
                        .await;
                }
            }
        }));
        for pool in 0..self.keys.pool_count() {
            let reporter = self.reporter.clone();
            let name = pool_service_name(self.keys.pool_name(pool));
            let mut has_keys = self.keys.subscribe_pool(pool);
            tasks.push(tokio::spawn(async move {
                if has_keys.wait_for(|has| *has).await.is_ok() {
                    reporter
                        .set_service_status(&name, ServingStatus::Serving)
                        .await;
                }
            }));
        }
        tasks
    }

    /// Sets the overall and every pool's status (NOT_SERVING at start and shutdown).
    pub async fn set_all(&self, status: ServingStatus) {
        self.reporter.set_service_status("", status).await;
        for name in [SERVICE_NAME, EXT_AUTHZ_SERVICE_NAME] {
            self.reporter.set_service_status(name, status).await;
        }
        for pool in 0..self.keys.pool_count() {
            self.reporter
                .set_service_status(&pool_service_name(self.keys.pool_name(pool)), status)
                .await;
        }
    }
}
