//! Revocation and off-boarding end to end: the dev pool (GetUser and, through
//! the AWS SDK, AdminGetUser on loopback), and a GetUser stand-in for the
//! cost and failure rules. (tests against moto's Cognito emulator:
//! clients/python/tests/test_revocation_moto.py.)

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use token_validator::{
    App, RunningService,
    config::{RevocationCheck, RevocationOnError},
    dev::{DevIssuer, MintRequest, MintedTokens, SigningKey, UserChange},
    grpc::proto::{self, token_validator_client::TokenValidatorClient},
};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

/// The dev pool, its answers cached for one second.
async fn dev_service() -> (DevIssuer, RunningService, TokenValidatorClient<Channel>) {
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut config = issuer.service_config("127.0.0.1:0".parse().unwrap());
    config.pools[0].revocation.cache_ttl_secs = 1;
    let service = App::spawn(config).await.unwrap();
    assert!(service.wait_ready(TIMEOUT).await);
    let client = TokenValidatorClient::connect(service.url()).await.unwrap();
    (issuer, service, client)
}

fn mint(issuer: &DevIssuer, user: &str) -> MintedTokens {
    issuer.mint(&MintRequest {
        username: Some(user.into()),
        ..MintRequest::default()
    })
}

async fn checked(client: &mut TokenValidatorClient<Channel>, token: &str) -> proto::Reason {
    let response = validate(
        client,
        proto::ValidateTokenRequest {
            token: token.into(),
            check_revocation: true,
            ..Default::default()
        },
    )
    .await;
    reason_of(&response)
}

/// Polls (bounded) until the token answers `expected` with the check on.
async fn becomes(
    client: &TokenValidatorClient<Channel>,
    token: &str,
    expected: proto::Reason,
) -> bool {
    eventually(|| {
        let mut client = client.clone();
        async move { checked(&mut client, token).await == expected }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_out_user_is_refused_and_so_is_the_id_token_of_the_same_sign_in() {
    let (issuer, service, mut client) = dev_service().await;
    let bob = mint(&issuer, "bob");
    assert_eq!(
        checked(&mut client, &bob.access_token).await,
        proto::Reason::Unspecified
    );
    assert_eq!(
        checked(&mut client, &bob.id_token).await,
        proto::Reason::Unspecified
    );

    assert!(issuer.revoke(&bob.access_token));
    // Within the cache TTL (1 s here) the access token is refused…
    assert!(becomes(&client, &bob.access_token, proto::Reason::Revoked).await);
    // …without the check, it is still a genuine token: that is what the check is for.
    let offline = validate(&mut client, request(bob.access_token.clone())).await;
    assert!(offline.valid);
    // The ID token of the same sign-in: refused through its origin_jti, once
    // its own cached answer (active, 1 s) has expired.
    assert!(becomes(&client, &bob.id_token, proto::Reason::Revoked).await);
    let metrics = scrape_metrics(service.metrics_addr.unwrap()).await;
    assert!(
        metric_sum(
            &metrics,
            "token_validator_revocation_cache_hits_total",
            "source=\"origin_jti\""
        ) >= 1.0,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_deleted_and_enabled_again_users() {
    let (issuer, _service, mut client) = dev_service().await;
    let carol = mint(&issuer, "carol");
    assert!(issuer.change_user("carol", UserChange::Disable));
    // Both kinds: GetUser refuses the access token, AdminGetUser says disabled.
    let response = validate(
        &mut client,
        proto::ValidateTokenRequest {
            token: carol.id_token.clone(),
            check_revocation: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(reason_of(&response), proto::Reason::Revoked);
    assert!(
        response.message.contains("disabled"),
        "{}",
        response.message
    );
    assert_eq!(
        checked(&mut client, &carol.access_token).await,
        proto::Reason::Revoked
    );

    assert!(issuer.change_user("carol", UserChange::Enable));
    assert!(becomes(&client, &carol.id_token, proto::Reason::Unspecified).await);
    assert!(becomes(&client, &carol.access_token, proto::Reason::Unspecified).await);

    assert!(issuer.change_user("carol", UserChange::Delete));
    assert!(becomes(&client, &carol.id_token, proto::Reason::Revoked).await);
    assert!(becomes(&client, &carol.access_token, proto::Reason::Revoked).await);
}

/// A service for the test pool whose GetUser is the stand-in at `jwks`.
async fn stand_in_service(
    jwks: &JwksServer,
    check: RevocationCheck,
    on_error: RevocationOnError,
) -> RunningService {
    let mut config = config_for(&jwks.url());
    config.userinfo.cognito_endpoint = format!("http://{}/", jwks.addr);
    config.pools[0].revocation.check = check;
    config.pools[0].revocation.on_error = on_error;
    start_service(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_checks_of_one_revoked_token_make_one_cognito_call() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    jwks.set_get_user_status(400);
    jwks.set_get_user_message("Access Token has been revoked");
    // Slow enough that every check arrives while the first call is out.
    jwks.set_get_user_delay(Duration::from_millis(300));
    let service = stand_in_service(&jwks, RevocationCheck::Always, RevocationOnError::Deny).await;
    let token = Arc::new(key.sign_claims(&access_claims()));
    let mut warm = client(&service).await;
    // One call first: a fresh HTTP/2 connection's first burst may be refused.
    let _ = validate(&mut warm, request("x")).await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..1_000 {
        let mut client = warm.clone();
        let token = token.clone();
        calls.spawn(async move { checked(&mut client, &token).await });
    }
    while let Some(reason) = calls.join_next().await {
        assert_eq!(reason.unwrap(), proto::Reason::Revoked);
    }
    assert_eq!(jwks.get_user_calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_pools_never_ask_and_an_unreachable_cognito_follows_on_error() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    jwks.set_get_user_status(500);
    let token = key.sign_claims(&access_claims());

    let never = stand_in_service(&jwks, RevocationCheck::Never, RevocationOnError::Deny).await;
    assert_eq!(
        checked(&mut client(&never).await, &token).await,
        proto::Reason::Unspecified
    );
    assert_eq!(jwks.get_user_calls(), 0);

    // on_request, but not requested: no call either.
    let on_request =
        stand_in_service(&jwks, RevocationCheck::OnRequest, RevocationOnError::Deny).await;
    let mut on_request_client = client(&on_request).await;
    assert!(
        validate(&mut on_request_client, request(token.clone()))
            .await
            .valid
    );
    assert_eq!(jwks.get_user_calls(), 0);

    // Cognito failing, deny: UNAVAILABLE naming COGNITO_UNAVAILABLE and the pool.
    let status = on_request_client
        .validate_token(proto::ValidateTokenRequest {
            token: token.clone(),
            check_revocation: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.reason, "COGNITO_UNAVAILABLE");
    assert_eq!(info.metadata["pool"], "main");

    // allow: the offline answer, counted.
    let allow = stand_in_service(&jwks, RevocationCheck::Always, RevocationOnError::Allow).await;
    assert_eq!(
        checked(&mut client(&allow).await, &token).await,
        proto::Reason::Unspecified
    );
    let metrics = scrape_metrics(allow.metrics_addr.unwrap()).await;
    assert_eq!(
        metric_sum(&metrics, "token_validator_revocation_fallbacks_total", ""),
        1.0,
        "{metrics}"
    );
}
