//! token-validator: validates Amazon Cognito ID and access tokens over gRPC.
//!
//! Modules follow the data's path: [`config`] → [`jwks`] (keys) → [`validate`]
//! (token → verified claims or a typed rejection) → [`userinfo`] (claims or
//! Cognito GetUser → profile) → [`grpc`] (the service at the edge), with
//! [`telemetry`] beside and [`dev`] as the embedded local issuer.

pub mod app;
pub mod cli;
pub mod config;
pub mod dev;
pub mod grpc;
pub mod jwks;
pub mod net;
pub mod outbound;
pub mod rate;
pub mod telemetry;
pub mod text;
pub mod userinfo;
pub mod validate;

pub use app::{App, RunningService};
pub use config::Config;
