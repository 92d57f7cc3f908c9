//! Against a Cognito emulator no one here wrote: the npm package
//! `cognito-local` (pinned in tests/cognito-local/package.json), on loopback.
//! A pool, an app client and a user are created through its API, the user
//! signs in, and the service must accept both real tokens, answer GetUserInfo
//! through the emulator's GetUser, and refuse a tampered token.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::*;
use serde_json::{Value, json};
use token_validator::{
    App,
    config::PoolConfig,
    grpc::proto::{self, Reason},
};

struct Emulator {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cognito-local")
}

/// Installs the pinned emulator when `.ci/run` has not already (bounded by npm's own timeouts).
fn ensure_installed() -> PathBuf {
    let dir = fixture_dir();
    let start = dir.join("node_modules/cognito-local/lib/bin/start.js");
    if !start.exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .expect("npm is needed to install the cognito-local emulator (see README: Tests)");
        assert!(status.success(), "npm ci in tests/cognito-local failed");
    }
    assert!(start.exists(), "{} missing after npm ci", start.display());
    start
}

async fn start_emulator() -> Emulator {
    let start = ensure_installed();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".cognito")).unwrap();
    std::fs::write(
        dir.path().join(".cognito/config.json"),
        r#"{"UserPoolDefaults":{"UsernameAttributes":[]}}"#,
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("node")
        .arg(start)
        .current_dir(dir.path())
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs the emulator");
    let mut emulator = Emulator {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            emulator.child.try_wait().unwrap().is_none(),
            "cognito-local exited at start"
        );
        let health = http
            .get(format!("{}/health", emulator.url))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        if health.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cognito-local did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    emulator
}

async fn cognito(http: &reqwest::Client, url: &str, operation: &str, body: Value) -> Value {
    let response = http
        .post(format!("{url}/"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "X-Amz-Target",
            format!("AWSCognitoIdentityProviderService.{operation}"),
        )
        .body(body.to_string())
        .timeout(TIMEOUT)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{operation}: HTTP {status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[tokio::test]
async fn tokens_from_the_cognito_local_emulator_validate_and_a_tampered_one_does_not() {
    let emulator = start_emulator().await;
    let http = reqwest::Client::new();
    let url = emulator.url.as_str();
    let pool = cognito(&http, url, "CreateUserPool", json!({"PoolName": "tv-test"})).await;
    let pool_id = pool["UserPool"]["Id"].as_str().unwrap().to_string();
    let client = cognito(
        &http,
        url,
        "CreateUserPoolClient",
        json!({"UserPoolId": pool_id, "ClientName": "tv-test",
               "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]}),
    )
    .await;
    let client_id = client["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_string();
    cognito(
        &http,
        url,
        "AdminCreateUser",
        json!({"UserPoolId": pool_id, "Username": "alice", "TemporaryPassword": "TempPassw0rd!",
               "MessageAction": "SUPPRESS",
               "UserAttributes": [{"Name": "email", "Value": "alice@example.com"},
                                  {"Name": "email_verified", "Value": "true"}]}),
    )
    .await;
    cognito(
        &http,
        url,
        "AdminSetUserPassword",
        json!({"UserPoolId": pool_id, "Username": "alice", "Password": "Passw0rd!Test", "Permanent": true}),
    )
    .await;
    cognito(
        &http,
        url,
        "CreateGroup",
        json!({"UserPoolId": pool_id, "GroupName": "admins"}),
    )
    .await;
    cognito(
        &http,
        url,
        "AdminAddUserToGroup",
        json!({"UserPoolId": pool_id, "Username": "alice", "GroupName": "admins"}),
    )
    .await;
    let auth = cognito(
        &http,
        url,
        "InitiateAuth",
        json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": client_id,
               "AuthParameters": {"USERNAME": "alice", "PASSWORD": "Passw0rd!Test"}}),
    )
    .await;
    let id_token = auth["AuthenticationResult"]["IdToken"]
        .as_str()
        .unwrap()
        .to_string();
    let access_token = auth["AuthenticationResult"]["AccessToken"]
        .as_str()
        .unwrap()
        .to_string();

    // The service trusts the emulator's pool: its issuer is the emulator's own URL.
    let mut config = config_for("http://unused.invalid/");
    config.pools = vec![PoolConfig {
        client_ids: vec![client_id.clone()],
        issuer: Some(format!("{url}/{pool_id}")),
        ..PoolConfig::new("cognito-local", "us-east-1", pool_id.clone())
    }];
    config.userinfo.cognito_lookup = true;
    config.userinfo.cognito_endpoint = format!("{url}/");
    let service = App::spawn(config).await.unwrap();
    assert!(
        service.wait_ready(TIMEOUT).await,
        "keys not loaded from the emulator's JWKS"
    );
    let mut client =
        token_validator::grpc::proto::token_validator_client::TokenValidatorClient::connect(
            service.url(),
        )
        .await
        .unwrap();

    let id = validate(&mut client, request(id_token.clone())).await;
    assert!(id.valid, "{id:?}");
    let claims = id.claims.unwrap();
    assert_eq!(
        (claims.token_use.as_str(), claims.username.as_str()),
        ("id", "alice")
    );
    assert_eq!(claims.client_id, client_id);
    assert_eq!(claims.email, "alice@example.com");

    let access = validate(
        &mut client,
        proto::ValidateTokenRequest {
            expected_token_use: proto::TokenUse::Access as i32,
            required_groups: vec!["admins".into()],
            required_scopes: vec!["aws.cognito.signin.user.admin".into()],
            ..request(format!("Bearer {access_token}"))
        },
    )
    .await;
    assert!(access.valid, "{access:?}");
    assert_eq!(access.claims.unwrap().client_id, client_id);

    let info = client
        .get_user_info(proto::GetUserInfoRequest {
            token: access_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.source, proto::UserInfoSource::Cognito as i32);
    assert_eq!(info.username, "alice");
    assert_eq!(info.email, "alice@example.com");
    assert_eq!(info.groups, vec!["admins"]);

    // Tampered: the payload says someone else, the signature is the emulator's original.
    let mut parts: Vec<String> = id_token.split('.').map(String::from).collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["cognito:username"] = "mallory".into();
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    let tampered = validate(&mut client, request(parts.join("."))).await;
    assert!(!tampered.valid);
    assert_eq!(reason_of(&tampered), Reason::BadSignature);
}
