//! token-validator: validates Amazon Cognito ID and access tokens over gRPC.
//!
//! Modules follow the data's path: [`config`] → [`jwks`] (keys) → [`validate`]
//! (token → verified claims or a typed rejection) → [`userinfo`] (claims or
//! Cognito GetUser → profile) → [`revocation`] (the opt-in online check) →
//! [`grpc`] (the service at the edge) and [`gateway`] (proxies' questions),
//! with [`telemetry`] beside and [`dev`] as the embedded local issuer.

// The gateway adapters' futures nest the revocation check's (moka, the AWS SDK)
// deeper than the default limit allows the compiler to lay out.
#![recursion_limit = "256"]

// The public modules are what the binary, the tests, the benches and the fuzz
// target use; the rest is the crate's own.
mod app;
pub mod cli;
pub mod config;
pub mod dev;
pub mod gateway;
pub mod grpc;
pub mod jwks;
pub(crate) mod net;
pub(crate) mod outbound;
pub(crate) mod rate;
pub mod revocation;
pub mod telemetry;
pub(crate) mod text;
pub mod userinfo;
pub mod validate;

pub use app::{App, Listeners, RunningService};
pub use config::Config;
