//! The client verbs: `validate`, `userinfo` and `health` against a running service.

use std::{io::Read, process::ExitCode, time::Duration};

use serde_json::json;

use super::TokenKind;
use crate::grpc::{client, proto};

fn read_token(token: String) -> anyhow::Result<String> {
    if token == "-" {
        let mut buffer = String::new();
        std::io::stdin().read_to_string(&mut buffer)?;
        Ok(buffer.trim().to_string())
    } else {
        Ok(token)
    }
}

/// What `validate` asks of the token beyond being genuine.
pub(super) struct Demands {
    pub token_use: Option<TokenKind>,
    pub scopes: Vec<String>,
    pub groups: Vec<String>,
    pub check_revocation: bool,
}

pub(super) async fn validate(
    token: String,
    addr: String,
    demands: Demands,
    json_output: bool,
) -> ExitCode {
    let Demands {
        token_use,
        scopes,
        groups,
        check_revocation,
    } = demands;
    let result = async {
        let token = read_token(token)?;
        let channel = client::connect(&addr, Duration::from_secs(5)).await?;
        let request = proto::ValidateTokenRequest {
            token,
            expected_token_use: match token_use {
                None => proto::TokenUse::Unspecified,
                Some(TokenKind::Id) => proto::TokenUse::Id,
                Some(TokenKind::Access) => proto::TokenUse::Access,
            } as i32,
            required_scopes: scopes,
            required_groups: groups,
            check_revocation,
        };
        Ok::<_, anyhow::Error>(client::validate(channel, request).await?)
    }
    .await;
    match result {
        Ok(answer) => {
            let reason =
                proto::Reason::try_from(answer.reason).map_or("UNKNOWN", |r| r.as_str_name());
            if json_output {
                let claims = answer.claims.as_ref();
                say!(
                    "{}",
                    json!({"valid": answer.valid, "reason": reason, "message": answer.message, "claims": claims})
                );
            } else if let (true, Some(c)) = (answer.valid, &answer.claims) {
                say!(
                    "valid {} token: sub={} username={} client_id={} groups=[{}] scopes=[{}] expires_at={}",
                    c.token_use,
                    c.sub,
                    c.username,
                    c.client_id,
                    c.groups.join(","),
                    c.scopes.join(","),
                    c.expires_at
                );
            } else {
                say!("invalid: {reason}: {}", answer.message);
            }
            if answer.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

pub(super) async fn userinfo(token: String, addr: String, json_output: bool) -> ExitCode {
    let result = async {
        let token = read_token(token)?;
        let channel = client::connect(&addr, Duration::from_secs(5)).await?;
        Ok::<_, anyhow::Error>(client::user_info(channel, token).await)
    }
    .await;
    match result {
        Ok(Ok(info)) => {
            let value = serde_json::to_value(&info).unwrap_or_default();
            if json_output {
                say!("{value}");
            } else {
                say!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        Ok(Err(client::ClientError::Status(status)))
            if status.code() == tonic::Code::Unauthenticated =>
        {
            say!("unauthenticated: {}", status.message());
            ExitCode::from(1)
        }
        Ok(Err(error)) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

pub(super) async fn health(addr: String, service: String, timeout_secs: u64) -> ExitCode {
    let timeout = Duration::from_secs(timeout_secs.max(1));
    let result = async {
        let channel = client::connect(&addr, timeout).await?;
        client::health(channel, &service).await
    }
    .await;
    match result {
        Ok(status) => {
            let name = tonic_health::pb::health_check_response::ServingStatus::try_from(status)
                .map_or("UNKNOWN", |s| s.as_str_name());
            say!("{name}");
            if name == "SERVING" {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}
