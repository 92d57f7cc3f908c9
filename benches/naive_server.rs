//! The naive reference for the peers comparison: what a team would write in a
//! day with tonic and jsonwebtoken. Same proto, same Cognito rules (issuer,
//! `token_use`, app client, `exp`), RS256 on every call, and the key parsed
//! again from the JWKS's `n` and `e` on every call: no key cache, no token
//! cache, no bounds, no telemetry. A full check of the real service (cache off)
//! is measured against this; cache hits against `echo_server`.
//!
//!   cargo bench --bench naive_server -- --port 50998 --jwks DIR/jwks.json \
//!       --issuer https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench1 \
//!       --client-id benchclient0000000000000001

use std::{collections::HashMap, net::SocketAddr};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use token_validator::grpc::proto::{
    self,
    token_validator_server::{TokenValidator, TokenValidatorServer},
};
use tonic::{Request, Response, Status};

/// The service binary's allocator, so the comparison is about the code.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Deserialize)]
struct Jwk {
    kid: String,
    n: String,
    e: String,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Claims {
    token_use: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    aud: Option<String>,
}

struct Naive {
    /// kid → (n, e), as the JWKS gave them: parsed into a key on every call.
    keys: HashMap<String, (String, String)>,
    issuer: String,
    client_id: String,
}

impl Naive {
    fn check(&self, token: &str) -> Result<(), proto::Reason> {
        let header = decode_header(token).map_err(|_| proto::Reason::Malformed)?;
        let kid = header.kid.ok_or(proto::Reason::Malformed)?;
        let (n, e) = self.keys.get(&kid).ok_or(proto::Reason::UnknownKey)?;
        let key = DecodingKey::from_rsa_components(n, e).map_err(|_| proto::Reason::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.leeway = 0;
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => proto::Reason::Expired,
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => proto::Reason::UnknownIssuer,
                jsonwebtoken::errors::ErrorKind::InvalidSignature => proto::Reason::BadSignature,
                _ => proto::Reason::Malformed,
            })?
            .claims;
        let client = match claims.token_use.as_str() {
            "id" => claims.aud,
            "access" => claims.client_id,
            _ => return Err(proto::Reason::WrongTokenUse),
        };
        if client.as_deref() != Some(self.client_id.as_str()) {
            return Err(proto::Reason::WrongClient);
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl TokenValidator for Naive {
    async fn validate_token(
        &self,
        request: Request<proto::ValidateTokenRequest>,
    ) -> Result<Response<proto::ValidateTokenResponse>, Status> {
        let token = request.into_inner().token;
        let token = token.strip_prefix("Bearer ").unwrap_or(&token);
        let (valid, reason) = match self.check(token) {
            Ok(()) => (true, proto::Reason::Unspecified),
            Err(reason) => (false, reason),
        };
        Ok(Response::new(proto::ValidateTokenResponse {
            valid,
            reason: reason as i32,
            message: if valid {
                "valid".into()
            } else {
                reason.as_str_name().into()
            },
            claims: None,
        }))
    }

    async fn get_user_info(
        &self,
        _request: Request<proto::GetUserInfoRequest>,
    ) -> Result<Response<proto::GetUserInfoResponse>, Status> {
        Err(Status::unimplemented("naive server"))
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches`: a server, nothing to run on its own.
        return Ok(());
    }
    let port: u16 = arg(&args, "--port").map_or(Ok(50998), |p| p.parse())?;
    let jwks: Jwks = serde_json::from_str(&std::fs::read_to_string(
        arg(&args, "--jwks").ok_or("--jwks FILE is required")?,
    )?)?;
    let naive = Naive {
        keys: jwks.keys.into_iter().map(|k| (k.kid, (k.n, k.e))).collect(),
        issuer: arg(&args, "--issuer").ok_or("--issuer is required")?,
        client_id: arg(&args, "--client-id").ok_or("--client-id is required")?,
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    tokio::runtime::Runtime::new()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("READY {}", listener.local_addr()?.port());
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(TokenValidatorServer::new(naive))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}
