//! What the real binary writes to its log when inputs are hostile: bounded,
//! one line per event, no line forged by text from the network.

mod common;

use std::time::Duration;

use common::{process::serve, *};
use serde_json::json;
use token_validator::{dev::SigningKey, grpc::proto};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_junk_jwks_keys_are_logged_once_per_change_not_per_fetch() {
    let key = SigningKey::generate("good").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let junk = |count: usize| -> Vec<serde_json::Value> {
        let mut keys = vec![key.jwk()];
        keys.extend((0..count).map(|i| {
            json!({"kty": "EC", "kid": format!("ec-{i}"), "crv": "P-256", "x": "AA", "y": "AA"})
        }));
        keys
    };
    jwks.set_raw_keys(junk(2_000));
    let served = serve(&jwks, "jwks:\n  refresh_interval_secs: 1\n", &[]).await;
    let skipped_lines = || {
        std::fs::read_to_string(&served.log)
            .unwrap()
            .lines()
            .filter(|l| l.contains("JWKS keys skipped"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    // Three more refreshes of the same document: still one line.
    let fetches = jwks.fetches();
    assert!(jwks.wait_for_fetches(fetches + 3).await);
    let lines = skipped_lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("2000 skipped: 2000 not RSA"),
        "{}",
        lines[0]
    );
    assert!(lines[0].len() < 1_000, "{} bytes", lines[0].len());

    // What is skipped changes: one more line.
    jwks.set_raw_keys(junk(1_000));
    assert!(
        eventually(|| async { skipped_lines().len() == 2 }).await,
        "{:#?}",
        skipped_lines()
    );
    assert!(skipped_lines()[1].contains("1000 skipped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cognitos_error_text_cannot_forge_a_log_line_in_the_pretty_format() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    jwks.set_get_user_status(400);
    jwks.set_get_user_message("boom\nINFO forged: the admin logged in\r\nmore");
    let served = serve(&jwks, "", &[("TOKEN_VALIDATOR_LOG_FORMAT", "pretty")]).await;
    let channel = token_validator::grpc::client::connect(&served.url, TIMEOUT)
        .await
        .unwrap();
    let mut client = proto::token_validator_client::TokenValidatorClient::new(channel);
    let status = client
        .get_user_info(proto::GetUserInfoRequest {
            token: key.sign_claims(&access_claims()),
        })
        .await
        .expect_err("GetUser fails");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    let log = || std::fs::read_to_string(&served.log).unwrap();
    assert!(
        eventually(|| async { log().contains("boom") }).await,
        "the GetUser failure was not logged: {}",
        log()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = log();
    assert!(
        !log.lines().any(|l| l.starts_with("INFO forged")
            || l.trim_start().starts_with("INFO forged")
            || l.trim_start().starts_with("more")),
        "a log line was forged:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_effective_config_is_logged_once_at_start_as_plain_values() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let served = serve(&jwks, "jwks:\n  refresh_interval_secs: 77\n", &[]).await;
    let log = std::fs::read_to_string(&served.log).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("effective configuration"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(line["fields"]["config"].as_str().unwrap()).unwrap();
    assert_eq!(config["jwks"]["refresh_interval_secs"], json!(77));
    assert_eq!(config["pools"][0]["name"], json!("main"));
    assert!(
        config["metrics"]["listen"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(!log.contains("Some("), "{log}");
}
