//! The gRPC edge: the generated contract, the TokenValidator service, server
//! assembly (health, reflection, limits, shutdown) and the small client the
//! CLI uses. Only this module knows tonic types; errors become statuses here, once.

pub mod client;
pub(crate) mod codec;
mod convert;
pub mod ext_authz;
pub mod health;
pub(crate) mod limits;
mod server;
mod service;
pub mod tls;
mod transport;
mod unread;

/// The generated types of `proto/tokenvalidator/v1/token_validator.proto`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("tokenvalidator.v1");

    /// The encoded descriptor set served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/token_validator_descriptor.bin"));
}

pub use server::{GrpcServer, Listener};
pub use service::TokenValidatorService;
pub use transport::{Coalesced, coalesced};

/// The gRPC service name the health service reports, besides "" (overall).
pub const SERVICE_NAME: &str = "tokenvalidator.v1.TokenValidator";

/// The RPCs this server reports metrics for (telemetry knows none by name).
pub const RPC_NAMES: crate::telemetry::rpc::RpcNames = crate::telemetry::rpc::RpcNames {
    methods: &[
        (SERVICE_NAME, "ValidateToken"),
        (SERVICE_NAME, "GetUserInfo"),
        (EXT_AUTHZ_SERVICE_NAME, "Check"),
    ],
};

/// Envoy's external authorization service, served on the same port.
pub const EXT_AUTHZ_SERVICE_NAME: &str = "envoy.service.auth.v3.Authorization";
