//! The ceiling for the peers comparison: a bare tonic server on the same proto
//! that answers `valid = true` without checking anything, echoing the token
//! back in `message`: a unary echo of a ~900-byte string, so its answers are
//! about as large as the real service's (whose claims carry the payload JSON).
//! Whatever the real service loses against it is the cost of validation itself.
//!
//! With `--coalesced` its connections are wrapped as the service's are
//! (`token_validator::grpc::Coalesced`: answers leave in one write per flush),
//! so a reader can tell that transport's gain apart from validation's cost.
//!
//!   cargo bench --bench echo_server -- --port 50999 [--coalesced]

use std::net::SocketAddr;

use token_validator::grpc::proto::{
    self,
    token_validator_server::{TokenValidator, TokenValidatorServer},
};
use tonic::{Request, Response, Status};

/// The service binary's allocator: the ceiling must not be flattered by a different one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Echo;

#[tonic::async_trait]
impl TokenValidator for Echo {
    async fn validate_token(
        &self,
        request: Request<proto::ValidateTokenRequest>,
    ) -> Result<Response<proto::ValidateTokenResponse>, Status> {
        let token = request.into_inner().token;
        Ok(Response::new(proto::ValidateTokenResponse {
            valid: true,
            message: token,
            ..Default::default()
        }))
    }

    async fn get_user_info(
        &self,
        _request: Request<proto::GetUserInfoRequest>,
    ) -> Result<Response<proto::GetUserInfoResponse>, Status> {
        Err(Status::unimplemented("echo server"))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches`: nothing to check in a server that checks nothing.
        return Ok(());
    }
    let port = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(50999), |p| p.parse())?;
    let coalesced = args.iter().any(|a| a == "--coalesced");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    tokio::runtime::Runtime::new()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("READY {}", listener.local_addr()?.port());
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let router = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(TokenValidatorServer::new(Echo));
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        if coalesced {
            let incoming = token_validator::grpc::coalesced(incoming);
            router.serve_with_incoming_shutdown(incoming, stop).await?;
        } else {
            router.serve_with_incoming_shutdown(incoming, stop).await?;
        }
        Ok(())
    })
}
