//! A small client for the CLI's `validate`, `userinfo` and `health` commands.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use super::proto;

/// Why a client call failed (not: the token is invalid).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad --addr {addr:?}: {message}")]
    BadAddress { addr: String, message: String },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("{}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
}

/// Connects to the service at `addr`: `http://HOST:PORT`, or `unix:///path`
/// for a sidecar listening on a Unix domain socket.
pub async fn connect(addr: &str, timeout: Duration) -> Result<Channel, ClientError> {
    if let Some(path) = addr.strip_prefix("unix://") {
        let path = std::path::PathBuf::from(path);
        // The URI is required by the API but unused: the connector dials the socket.
        let endpoint = Endpoint::from_static("http://localhost")
            .connect_timeout(timeout)
            .timeout(timeout);
        return endpoint
            .connect_with_connector(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }))
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.into(),
                source,
            });
    }
    let endpoint = Endpoint::from_shared(addr.to_string())
        .map_err(|e| ClientError::BadAddress {
            addr: addr.into(),
            message: e.to_string(),
        })?
        .connect_timeout(timeout)
        .timeout(timeout);
    endpoint
        .connect()
        .await
        .map_err(|source| ClientError::Connect {
            addr: addr.into(),
            source,
        })
}

pub async fn validate(
    channel: Channel,
    request: proto::ValidateTokenRequest,
) -> Result<proto::ValidateTokenResponse, ClientError> {
    let mut client = proto::token_validator_client::TokenValidatorClient::new(channel);
    Ok(client.validate_token(request).await?.into_inner())
}

pub async fn user_info(
    channel: Channel,
    token: String,
) -> Result<proto::GetUserInfoResponse, ClientError> {
    let mut client = proto::token_validator_client::TokenValidatorClient::new(channel);
    Ok(client
        .get_user_info(proto::GetUserInfoRequest { token })
        .await?
        .into_inner())
}

/// The health status of `service` ("" for the whole server).
pub async fn health(channel: Channel, service: &str) -> Result<i32, ClientError> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let response = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_string(),
        })
        .await?;
    Ok(response.into_inner().status)
}
