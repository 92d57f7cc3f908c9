//! GetUserInfo end to end: ID tokens from their claims, access tokens through a
//! real HTTP stand-in for Cognito's GetUser (the embedded dev issuer).

mod common;

use common::TIMEOUT;
use token_validator::{
    App, RunningService,
    dev::{DevIssuer, MintRequest},
    grpc::proto::{self, UserInfoSource, token_validator_client::TokenValidatorClient},
};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

/// The status's `google.rpc.ErrorInfo`: (reason, domain, metadata).
fn error_info(
    status: &tonic::Status,
) -> (String, String, std::collections::HashMap<String, String>) {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo detail in {status:?}"));
    (info.reason, info.domain, info.metadata)
}

async fn start(lookup: bool) -> (DevIssuer, RunningService, TokenValidatorClient<Channel>) {
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut config = issuer.service_config("127.0.0.1:0".parse().unwrap());
    config.userinfo.cognito_lookup = lookup;
    let service = App::spawn(config).await.unwrap();
    assert!(service.wait_ready(TIMEOUT).await);
    let client = TokenValidatorClient::connect(service.url()).await.unwrap();
    (issuer, service, client)
}

fn minted(issuer: &DevIssuer) -> token_validator::dev::MintedTokens {
    issuer.mint(&MintRequest {
        username: Some("carol".into()),
        groups: Some(vec!["editors".into()]),
        preferred_username: Some("Carol C".into()),
        attributes: [
            ("custom:tenant".to_string(), "acme".to_string()),
            ("given_name".to_string(), "Carol".to_string()),
        ]
        .into(),
        ..MintRequest::default()
    })
}

async fn user_info(
    client: &mut TokenValidatorClient<Channel>,
    token: &str,
) -> Result<proto::GetUserInfoResponse, tonic::Status> {
    client
        .get_user_info(proto::GetUserInfoRequest {
            token: token.into(),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn an_id_token_profile_comes_from_its_claims() {
    let (issuer, _service, mut client) = start(true).await;
    let tokens = minted(&issuer);
    let info = user_info(&mut client, &tokens.id_token).await.unwrap();
    assert_eq!(info.source, UserInfoSource::TokenClaims as i32);
    assert_eq!(info.username, "carol");
    assert_eq!(info.preferred_username, "Carol C");
    assert_eq!(info.email, "carol@example.com");
    assert!(info.email_verified);
    assert_eq!(info.given_name, "Carol");
    assert_eq!(info.groups, vec!["editors"]);
    assert_eq!(
        info.attributes.get("custom:tenant").map(String::as_str),
        Some("acme")
    );
    assert!(!info.sub.is_empty());
    assert!(
        !info.attributes.contains_key("exp"),
        "token mechanics are not user attributes"
    );
}

#[tokio::test]
async fn an_access_token_profile_comes_from_cognito_get_user() {
    let (issuer, _service, mut client) = start(true).await;
    let tokens = minted(&issuer);
    let info = user_info(&mut client, &format!("Bearer {}", tokens.access_token))
        .await
        .unwrap();
    assert_eq!(info.source, UserInfoSource::Cognito as i32);
    assert_eq!(info.username, "carol");
    assert_eq!(info.preferred_username, "Carol C");
    assert_eq!(info.email, "carol@example.com");
    assert_eq!(
        info.groups,
        vec!["editors"],
        "groups come from the verified token"
    );
    assert_eq!(
        info.attributes.get("custom:tenant").map(String::as_str),
        Some("acme")
    );
    let id_sub = user_info(&mut client, &tokens.id_token).await.unwrap().sub;
    assert_eq!(info.sub, id_sub);
}

#[tokio::test]
async fn a_revoked_access_token_is_unauthenticated() {
    let (issuer, _service, mut client) = start(true).await;
    let tokens = minted(&issuer);
    assert!(issuer.revoke(&tokens.access_token));
    let status = user_info(&mut client, &tokens.access_token)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("NotAuthorizedException"),
        "{}",
        status.message()
    );
    assert!(!status.message().contains(&tokens.access_token));
    let (reason, domain, _) = error_info(&status);
    assert_eq!(
        (reason.as_str(), domain.as_str()),
        ("REASON_REVOKED", "tokenvalidator.v1"),
        "revoked is its own reason, in the detail"
    );
}

#[tokio::test]
async fn an_invalid_token_is_unauthenticated_with_its_reason() {
    let (issuer, _service, mut client) = start(true).await;
    let expired = issuer.mint(&MintRequest {
        expires_in: Some(-10),
        ..MintRequest::default()
    });
    let status = user_info(&mut client, &expired.id_token).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().starts_with("REASON_EXPIRED"),
        "{}",
        status.message()
    );
    let (reason, domain, metadata) = error_info(&status);
    assert_eq!(
        (reason.as_str(), domain.as_str()),
        ("REASON_EXPIRED", "tokenvalidator.v1")
    );
    assert_eq!(metadata.get("pool").map(String::as_str), Some("dev"));
    assert!(
        metadata
            .get("kid")
            .is_some_and(|kid| kid.starts_with("dev-"))
    );
    let status = user_info(&mut client, "").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(error_info(&status).0, "TOKEN_EMPTY");
    let status = user_info(&mut client, &"a".repeat(20_000))
        .await
        .unwrap_err();
    assert_eq!(error_info(&status).0, "TOKEN_TOO_LARGE");
}

#[tokio::test]
async fn with_the_lookup_off_an_access_token_answers_from_its_claims() {
    let (issuer, _service, mut client) = start(false).await;
    let tokens = minted(&issuer);
    let info = user_info(&mut client, &tokens.access_token).await.unwrap();
    assert_eq!(info.source, UserInfoSource::TokenClaims as i32);
    assert_eq!(info.username, "carol");
    assert_eq!(info.groups, vec!["editors"]);
    assert_eq!(info.email, "", "access tokens carry no profile claims");
}

#[tokio::test]
async fn get_user_answers_are_cached_and_a_failing_lookup_is_unavailable() {
    use common::*;
    use token_validator::dev::SigningKey;
    let key = SigningKey::generate("k").unwrap();
    let cognito = JwksServer::start(&[&key]).await;
    let mut config = config_for(&cognito.url());
    config.userinfo.cognito_lookup = true;
    config.userinfo.cognito_endpoint = format!("http://{}/", cognito.addr);
    config.userinfo.timeout_ms = 300;
    let service = start_service(config).await;
    let mut client = client(&service).await;
    let token = key.sign_claims(&access_claims());

    let first = user_info(&mut client, &token).await.unwrap();
    let second = user_info(&mut client, &token).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first.username, "slow-user");
    assert_eq!(
        cognito.get_user_calls(),
        1,
        "the second answer came from the cache"
    );

    // GetUser slower than its timeout: a clear UNAVAILABLE, and ValidateToken is unaffected.
    cognito.set_get_user_delay(std::time::Duration::from_secs(2));
    let other = key.sign_claims(&access_claims());
    let status = user_info(&mut client, &other).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(error_info(&status).0, "COGNITO_UNAVAILABLE");
    assert!(validate(&mut client, request(other)).await.valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_lookups_of_one_token_share_one_get_user_call() {
    use common::*;
    use token_validator::dev::SigningKey;
    let key = SigningKey::generate("k").unwrap();
    let cognito = JwksServer::start(&[&key]).await;
    cognito.set_get_user_delay(std::time::Duration::from_millis(300));
    let mut config = config_for(&cognito.url());
    config.userinfo.cognito_lookup = true;
    config.userinfo.cognito_endpoint = format!("http://{}/", cognito.addr);
    let service = start_service(config).await;
    let client = client(&service).await;
    let token = key.sign_claims(&access_claims());
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let (mut client, token) = (client.clone(), token.clone());
            tokio::spawn(async move { user_info(&mut client, &token).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().username, "slow-user");
    }
    assert_eq!(cognito.get_user_calls(), 1);
}
