//! Faults on the key path, over loopback: whatever the JWKS endpoint does, the
//! service stays up, keeps its last good keys, counts the failure, reports
//! key age, and recovers by itself once the endpoint heals. Cognito GetUser
//! failing does not touch ValidateToken.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use token_validator::{RunningService, dev::SigningKey, grpc::proto::Reason};
use tonic::Code;

async fn scrape(service: &RunningService) -> String {
    scrape_metrics(service.metrics_addr.unwrap()).await
}

fn counter(text: &str, result: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with("token_validator_jwks_fetches_total{")
                && l.contains(&format!("result=\"{result}\""))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Runs one fault: apply it, check the service rides it out, heal, check recovery.
async fn ride_out(
    name: &str,
    result_kind: &str,
    apply: impl FnOnce(&mut JwksServer) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>,
) {
    let old = SigningKey::generate("old").unwrap();
    let mut jwks = JwksServer::start(&[&old]).await;
    let mut config = config_for(&jwks.url());
    config.jwks.refresh_interval_secs = 1;
    config.jwks.fetch_timeout_ms = 500;
    config.jwks.connect_timeout_ms = 300;
    config.token_cache.enabled = false;
    let service = start_service(config).await;
    let mut client = client(&service).await;
    assert!(
        validate(&mut client, request(old.sign_claims(&id_claims())))
            .await
            .valid
    );

    apply(&mut jwks).await;
    let counted =
        eventually(|| async { counter(&scrape(&service).await, result_kind) >= 2.0 }).await;
    assert!(
        counted,
        "{name}: failures not counted as {result_kind}:\n{}",
        scrape(&service).await
    );
    // Still up, on the last good keys, and the key age shows how stale they are.
    assert!(
        validate(&mut client, request(old.sign_claims(&id_claims())))
            .await
            .valid,
        "{name}: lost the last good keys"
    );
    assert_eq!(service.app.keys.key_count(0), 1, "{name}");
    // Failed fetches do not reset the key age: it keeps growing through the fault.
    let age = service.app.keys.key_age(0).unwrap();
    let more = eventually(|| async { counter(&scrape(&service).await, result_kind) >= 3.0 }).await;
    assert!(more, "{name}: no further failed fetch");
    let later = service.app.keys.key_age(0).unwrap();
    assert!(
        later > age,
        "{name}: key age {age:?} → {later:?} did not grow"
    );
    let health = token_validator::grpc::client::health(
        token_validator::grpc::client::connect(&service.url(), TIMEOUT)
            .await
            .unwrap(),
        "",
    )
    .await
    .unwrap();
    assert_eq!(health, 1, "{name}: still SERVING");

    // Heal with a rotated key: the service picks it up by itself.
    let new = SigningKey::generate("new").unwrap();
    jwks.set_keys(&[&new]);
    jwks.set_mode(Mode::Up);
    jwks.set_delay(Duration::ZERO);
    if jwks.is_stopped() {
        jwks.restart().await;
    }
    let recovered = eventually(|| {
        let mut client = client.clone();
        let token = new.sign_claims(&id_claims());
        async move { validate(&mut client, request(token)).await.valid }
    })
    .await;
    assert!(recovered, "{name}: did not recover");
    assert!(
        service.app.keys.key_age(0).unwrap() < Duration::from_secs(2),
        "{name}"
    );
}

#[tokio::test]
async fn jwks_down() {
    ride_out("down", "http_error", |jwks| {
        Box::pin(async move {
            jwks.stop();
        })
    })
    .await;
}

#[tokio::test]
async fn jwks_down_then_back_on_the_same_port() {
    let key = SigningKey::generate("k").unwrap();
    let mut jwks = JwksServer::start(&[&key]).await;
    let mut config = config_for(&jwks.url());
    config.jwks.refresh_interval_secs = 1;
    let service = start_service(config).await;
    let fetched = jwks.fetches();
    jwks.stop();
    // A refresh was tried and failed while the server was down: proven by the
    // failure counter, not by waiting long enough.
    let failures = |text: &str| counter(text, "http_error") + counter(text, "timeout");
    let failed_before = failures(&scrape(&service).await);
    assert!(
        eventually(|| async { failures(&scrape(&service).await) > failed_before }).await,
        "no failed fetch was recorded while the server was down"
    );
    assert_eq!(jwks.fetches(), fetched, "a stopped server answered");
    jwks.restart().await;
    assert!(
        jwks.wait_for_fetches(fetched + 1).await,
        "no fetch after the server came back"
    );
    assert!(
        eventually(|| async { service.app.keys.key_age(0).unwrap() < Duration::from_secs(1) })
            .await
    );
}

#[tokio::test]
async fn jwks_slower_than_the_timeout() {
    ride_out("slow", "timeout", |jwks| {
        Box::pin(async move { jwks.set_delay(Duration::from_secs(3)) })
    })
    .await;
}

#[tokio::test]
async fn jwks_403_with_an_html_body() {
    ride_out("403 html", "http_error", |jwks| {
        Box::pin(async move { jwks.set_mode(Mode::Status(403)) })
    })
    .await;
}

#[tokio::test]
async fn jwks_200_with_garbage() {
    ride_out("garbage", "invalid", |jwks| {
        Box::pin(async move { jwks.set_mode(Mode::Garbage) })
    })
    .await;
}

#[tokio::test]
async fn jwks_200_with_a_50_mib_body() {
    ride_out("50 MiB", "invalid", |jwks| {
        Box::pin(async move { jwks.set_mode(Mode::Huge(50 * 1024 * 1024)) })
    })
    .await;
}

#[tokio::test]
async fn jwks_with_only_unusable_keys() {
    ride_out("wrong kty and 1024-bit", "invalid", |jwks| {
        Box::pin(async move {
            let short = SigningKey::generate("short").unwrap();
            let mut weak = short.jwk();
            weak["n"] = base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                [0xc5u8; 128],
            )
            .into();
            jwks.set_raw_keys(vec![
                json!({"kty": "EC", "crv": "P-256", "kid": "ec", "x": "AAAA", "y": "AAAA"}),
                weak,
            ]);
        })
    })
    .await;
}

#[tokio::test]
async fn jwks_redirecting_to_another_host() {
    let decoy = JwksServer::start(&[&SigningKey::generate("decoy").unwrap()]).await;
    let target = format!("127.0.0.2:{}", decoy.addr.port());
    ride_out("redirect", "http_error", |jwks| {
        Box::pin(async move { jwks.set_mode(Mode::RedirectTo(target)) })
    })
    .await;
    assert_eq!(decoy.fetches(), 0, "a redirect was followed");
}

#[tokio::test]
async fn jwks_flapping_between_two_key_sets() {
    let a = SigningKey::generate("a").unwrap();
    let b = SigningKey::generate("b").unwrap();
    let jwks = JwksServer::start(&[&a]).await;
    let mut config = config_for(&jwks.url());
    config.jwks.refresh_interval_secs = 1;
    config.jwks.unknown_kid_cooldown_secs = 1;
    config.token_cache.enabled = false;
    let service = start_service(config).await;
    let mut client = client(&service).await;
    jwks.set_mode(Mode::Flapping(vec![b.jwk()]));
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    let (mut valid, mut unknown) = (0, 0);
    while std::time::Instant::now() < deadline {
        for key in [&a, &b] {
            let answer = validate(&mut client, request(key.sign_claims(&id_claims()))).await;
            match reason_of(&answer) {
                Reason::Unspecified => valid += 1,
                Reason::UnknownKey => unknown += 1,
                other => panic!("flapping keys gave {other:?}: {}", answer.message),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(valid > 0 && unknown > 0, "valid {valid}, unknown {unknown}");
    let text = scrape(&service).await;
    let rotations: f64 = text
        .lines()
        .filter(|l| l.starts_with("token_validator_jwks_rotations_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert!(rotations >= 2.0, "rotations counted: {rotations}");
}

#[tokio::test]
async fn cognito_get_user_failing_or_slow_leaves_validate_token_alone() {
    let key = SigningKey::generate("k").unwrap();
    let cognito = JwksServer::start(&[&key]).await;
    let mut config = config_for(&cognito.url());
    config.userinfo.cognito_lookup = true;
    config.userinfo.cognito_endpoint = format!("http://{}/", cognito.addr);
    config.userinfo.timeout_ms = 400;
    let service = start_service(config).await;
    let mut client = client(&service).await;

    cognito.set_get_user_status(500);
    let status = client
        .get_user_info(token_validator::grpc::proto::GetUserInfoRequest {
            token: key.sign_claims(&access_claims()),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("GetUser"), "{}", status.message());
    assert!(
        validate(&mut client, request(key.sign_claims(&access_claims())))
            .await
            .valid
    );

    cognito.set_get_user_status(200);
    cognito.set_get_user_delay(Duration::from_secs(5));
    let started = std::time::Instant::now();
    let status = client
        .get_user_info(token_validator::grpc::proto::GetUserInfoRequest {
            token: key.sign_claims(&access_claims()),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "GetUserInfo waited for the slow GetUser instead of its deadline"
    );
    assert!(
        validate(&mut client, request(key.sign_claims(&access_claims())))
            .await
            .valid
    );
}
