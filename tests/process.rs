//! The real binary: `serve` from a YAML file with graceful shutdown on SIGTERM,
//! and the client verbs (`validate`, `userinfo`, `health`) against `dev`.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use common::{process::*, *};
use token_validator::{
    dev::SigningKey,
    grpc::{client as grpc_client, proto},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_traffic_drains_in_flight_calls_and_exits_zero() {
    let key = SigningKey::generate("k").unwrap();
    let cognito = JwksServer::start(&[&key]).await;
    let served = serve(
        &cognito,
        "server:\n  shutdown_delay_ms: 1000\n  shutdown_grace_secs: 10\n",
        &[],
    )
    .await;
    let (mut process, url) = (served.process, served.url.clone());

    // Slow GetUser answers keep 20 calls in flight while SIGTERM arrives.
    cognito.set_get_user_delay(Duration::from_millis(1500));
    let channel = grpc_client::connect(&url, Duration::from_secs(10))
        .await
        .unwrap();
    let mut calls = Vec::new();
    for _ in 0..20 {
        let channel = channel.clone();
        let token = key.sign_claims(&access_claims());
        calls.push(tokio::spawn(async move {
            grpc_client::user_info(channel, token).await
        }));
    }
    assert!(
        eventually(|| async { cognito.get_user_calls() >= 20 }).await,
        "calls did not reach the server"
    );
    let pid = process.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );

    // Health turns NOT_SERVING at once, while calls are still being served.
    let health_channel = channel.clone();
    assert!(
        eventually(|| {
            let channel = health_channel.clone();
            async move { grpc_client::health(channel, "").await.ok() == Some(2) }
        })
        .await,
        "health did not turn NOT_SERVING after SIGTERM"
    );
    for call in calls {
        let answer = tokio::time::timeout(TIMEOUT, call).await.unwrap().unwrap();
        let info = answer.expect("an in-flight call failed during shutdown");
        assert_eq!(info.username, "slow-user");
    }
    let status = process
        .wait_exit(Duration::from_secs(15))
        .expect("did not exit within the grace period");
    assert!(status.success(), "exit status {status:?}");
}

/// Starts `token-validator dev --json` and returns the process and its JSON line.
fn start_dev() -> (Process, serde_json::Value) {
    let mut child = Command::new(BIN)
        .args([
            "dev",
            "--listen",
            "127.0.0.1:0",
            "--issuer-listen",
            "127.0.0.1:0",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let process = Process(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(TIMEOUT).expect("dev printed its JSON line");
    (process, serde_json::from_str(&line).expect("one JSON line"))
}

/// `POST /dev/tokens` on the dev issuer.
fn mint(url: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, text) = post(url, body);
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// A JSON POST: the status and the body.
fn post(url: &str, body: serde_json::Value) -> (u16, String) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(url)
            .json(&body)
            .timeout(TIMEOUT)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    })
}

fn run(args: &[&str]) -> (i32, String) {
    let output = Command::new(BIN).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn cli_verbs_answer_with_the_documented_exit_codes() {
    let (_dev, info) = start_dev();
    let url = info["grpc_url"].as_str().unwrap();
    let id = info["id_token"].as_str().unwrap();
    let access = info["access_token"].as_str().unwrap();

    let (code, out) = run(&["validate", "--addr", url, "--json", id]);
    assert_eq!(code, 0, "{out}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["valid"], true);
    assert_eq!(answer["claims"]["username"], "dev-user");
    assert_eq!(answer["claims"]["json"]["preferred_username"], "Dev User");

    let tampered = format!("{}x", &id[..id.len() - 1]);
    let (code, out) = run(&["validate", "--addr", url, &tampered]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("invalid: REASON_"), "{out}");
    assert!(!out.contains(&tampered), "the token is never echoed");

    let (code, _) = run(&["validate", "--addr", url, "--token-use", "access", id]);
    assert_eq!(code, 1);
    let (code, _) = run(&[
        "validate", "--addr", url, "--group", "admin", "--scope", "openid", access,
    ]);
    assert_eq!(code, 0);

    let (code, out) = run(&["userinfo", "--addr", url, "--json", access]);
    assert_eq!(code, 0, "{out}");
    let profile: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        profile["source"],
        proto::UserInfoSource::Cognito.as_str_name()
    );
    assert_eq!(profile["preferred_username"], "Dev User");

    // Tokens minted over HTTP work too (the interface scripts and the Python tests use).
    let minted = mint(
        info["mint_url"].as_str().unwrap(),
        serde_json::json!({"username": "bob", "groups": ["users"]}),
    );
    let (code, _) = run(&[
        "validate",
        "--addr",
        url,
        "--group",
        "admin",
        minted["id_token"].as_str().unwrap(),
    ]);
    assert_eq!(code, 1, "bob is not in admin");
    // An expiry that would wrap `exp` is refused, naming the field.
    for expires_in in [i64::MAX, i64::MIN, 315_360_001] {
        let (status, text) = post(
            info["mint_url"].as_str().unwrap(),
            serde_json::json!({ "expires_in": expires_in }),
        );
        assert_eq!(status, 400, "expires_in {expires_in}: {text}");
        assert!(text.contains("expires_in"), "{text}");
    }

    let (code, out) = run(&["health", "--addr", url]);
    assert_eq!((code, out.trim()), (0, "SERVING"));

    let dead = format!("http://127.0.0.1:{}", free_port());
    assert_eq!(run(&["validate", "--addr", &dead, id]).0, 2);
    assert_eq!(run(&["health", "--addr", &dead]).0, 1);

    // --addr as grpcurl, Python and Node take it: HOST:PORT.
    let host_port = url.trim_start_matches("http://");
    assert_eq!(run(&["validate", "--addr", host_port, id]).0, 0);
    assert_eq!(run(&["health", "--addr", host_port]).0, 0);
    // Errors on one line, each part once.
    let (code, stderr) =
        run_stderr(&["validate", "--addr", dead.trim_start_matches("http://"), id]);
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(stderr.matches("transport error").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("tcp connect error").count(), 1, "{stderr}");
    let (code, stderr) = run_stderr(&["validate", "--addr", host_port, ""]);
    assert_eq!(code, 2);
    assert_eq!(stderr.matches("the token is empty").count(), 1, "{stderr}");
    let (code, stderr) = run_stderr(&["validate", "--addr", "ftp://x:1", id]);
    assert_eq!(code, 2);
    assert!(stderr.contains("bad --addr"), "{stderr}");
}

fn run_stderr(args: &[&str]) -> (i32, String) {
    let output = Command::new(BIN).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Starts `dev` with `args`, returning the process and its stdout lines.
fn start_dev_with(args: &[&str]) -> (Process, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .arg("dev")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Process(child), rx)
}

#[test]
fn dev_keeps_its_key_and_issuer_in_the_state_dir_and_its_banner_commands_run_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state_arg = state.to_str().unwrap();
    let (dev, lines) = start_dev_with(&[
        "--listen",
        "127.0.0.1:0",
        "--issuer-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--state-dir",
        state_arg,
        "--json",
    ]);
    let first: serde_json::Value =
        serde_json::from_str(&lines.recv_timeout(TIMEOUT).unwrap()).unwrap();
    let token = first["id_token"].as_str().unwrap().to_string();
    drop(dev);

    // Restarted with the same state dir (and no --issuer-listen): same issuer, same key.
    let (_dev, lines) = start_dev_with(&[
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--state-dir",
        state_arg,
    ]);
    let banner: Vec<String> = (0..40)
        .map_while(|_| lines.recv_timeout(TIMEOUT).ok())
        .take_while(|l| !l.starts_with("Ctrl-C"))
        .collect();
    let text = banner.join("\n");
    assert!(text.contains(first["issuer"].as_str().unwrap()), "{text}");
    assert!(text.contains("kept in --state-dir"), "{text}");
    let command = banner
        .iter()
        .find(|l| l.trim_start().contains(" validate --addr "))
        .unwrap_or_else(|| panic!("no validate command in the banner:\n{text}"));
    // The banner's own command, run by a shell exactly as printed.
    let status = Command::new("sh")
        .arg("-c")
        .arg(command.trim())
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{command}: {:?}", status);
    // The token minted before the restart is still valid.
    let addr = command.split_whitespace().nth(3).unwrap();
    assert_eq!(
        run(&["validate", "--addr", addr, &token]).0,
        0,
        "a pre-restart token"
    );
    assert!(text.contains("metrics       http://127.0.0.1:"), "{text}");
}
