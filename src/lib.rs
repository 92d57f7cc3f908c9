//! token-validator: validates Amazon Cognito ID and access tokens over gRPC.
//!
//! Modules follow the data's path: [`config`] → [`jwks`] (keys) → [`validate`]
//! (token → verified claims or a typed rejection) → [`userinfo`] (claims or
//! Cognito GetUser → profile) → [`grpc`] (the service at the edge), with
//! [`telemetry`] beside and [`dev`] as the embedded local issuer.

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
pub mod telemetry;
pub(crate) mod text;
pub mod userinfo;
pub mod validate;

pub use app::{App, Listeners, RunningService};
pub use config::Config;
