//! Hostile connections against the real binary: slow readers that never
//! drain their answers, connections that never speak, a flood under a low
//! open-file limit. Loopback only; every loop is bounded.

mod common;

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{hostile::slow_reader, process::*, *};
use token_validator::{dev::SigningKey, grpc::proto};
use tokio::{io::AsyncReadExt, net::TcpStream};

/// The process's resident memory, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Attacked {
    process: Process,
    url: String,
    addr: SocketAddr,
    metrics_port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// `serve` (optionally under `prlimit --nofile=N:N`) with `extra` config, SERVING.
async fn start(
    jwks: &JwksServer,
    extra: &str,
    env: &[(&str, &str)],
    nofile: Option<u64>,
) -> Attacked {
    let (port, metrics_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, serve_config(port, metrics_port, jwks, extra)).unwrap();
    let log = dir.path().join("stderr.log");
    // TOKEN_VALIDATOR_BIN: measure another build (the release one, for docs/CAPACITY.md).
    let bin = std::env::var("TOKEN_VALIDATOR_BIN").unwrap_or_else(|_| BIN.to_string());
    let mut command = match nofile {
        Some(n) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    command
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .envs(env.iter().copied());
    let process = Process(command.spawn().unwrap());
    let url = format!("http://127.0.0.1:{port}");
    assert!(
        wait_serving(&url).await,
        "the service never reported SERVING"
    );
    Attacked {
        process,
        url,
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        metrics_port,
        log,
        _dir: dir,
    }
}

impl Attacked {
    async fn metric(&self, name: &str, label: &str) -> f64 {
        let addr = format!("127.0.0.1:{}", self.metrics_port).parse().unwrap();
        metric_sum(&scrape_metrics(addr).await, name, label)
    }

    async fn healthz(&self) -> bool {
        let url = format!("http://127.0.0.1:{}/healthz", self.metrics_port);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
}

/// Validates one genuine token on `client`: Some(latency) when answered valid.
async fn one_valid_call(
    client: &mut proto::token_validator_client::TokenValidatorClient<tonic::transport::Channel>,
    key: &SigningKey,
) -> Option<Duration> {
    let started = Instant::now();
    let answer = tokio::time::timeout(
        TIMEOUT,
        client.validate_token(request(key.sign_claims(&id_claims()))),
    )
    .await
    .ok()?
    .ok()?;
    answer.into_inner().valid.then(|| started.elapsed())
}

/// Attack connections; `ATTACK_CONNECTIONS` overrides (1,000 for the report).
fn attack_connections() -> usize {
    std::env::var("ATTACK_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120)
}

/// Requests per attack connection; `ATTACK_STREAMS` overrides (measurements).
fn attack_streams() -> usize {
    std::env::var("ATTACK_STREAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_cannot_pin_memory_and_a_normal_client_keeps_its_answers() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let extra = std::env::var("ATTACK_EXTRA").unwrap_or_default();
    let served = start(
        &jwks,
        &format!("server:\n  stall_timeout_secs: 5\n{extra}"),
        &[],
        None,
    )
    .await;
    let pid = served.process.0.id();
    let channel = token_validator::grpc::client::connect(&served.url, TIMEOUT)
        .await
        .unwrap();
    let mut normal = proto::token_validator_client::TokenValidatorClient::new(channel);
    assert!(one_valid_call(&mut normal, &key).await.is_some());
    let rss_before = rss_mib(pid);

    let connections = attack_connections();
    let attack = tokio::spawn({
        let addr = served.addr;
        async move {
            let mut sent = 0;
            let mut holders = Vec::new();
            for _ in 0..connections {
                let (n, holder) = slow_reader(addr, attack_streams()).await;
                sent += n;
                holders.push(holder);
            }
            (sent, holders)
        }
    });
    // While the attack runs and for the stall bound after it: sample memory,
    // and call as a normal client on its own connection.
    let mut peak = rss_before;
    let (mut answered, mut slowest) = (0, Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attack_done_at: Option<Instant> = None;
    while Instant::now() < deadline {
        peak = peak.max(rss_mib(pid));
        let latency = one_valid_call(&mut normal, &key)
            .await
            .expect("a normal client's call failed during the attack");
        answered += 1;
        slowest = slowest.max(latency);
        if attack_done_at.is_none() && attack.is_finished() {
            attack_done_at = Some(Instant::now());
        }
        if attack_done_at.is_some_and(|at| at.elapsed() > Duration::from_secs(7)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (sent, holders) = attack.await.unwrap();
    let stalled = served
        .metric(
            "token_validator_connections_closed_total",
            "reason=\"stalled\"",
        )
        .await;
    let refused = served
        .metric("token_validator_answers_refused_total", "")
        .await;
    eprintln!(
        "{connections} slow-reader connections, {sent} requests sent: RSS {rss_before:.1} -> peak {peak:.1} MiB; \
         {stalled} connections closed as stalled, {refused} calls refused; \
         normal client: {answered} valid answers, slowest {slowest:?}"
    );
    assert!(
        sent >= connections * attack_streams().min(16),
        "the attack barely ran: {sent} requests"
    );
    assert!(
        peak < 80.0,
        "RSS reached {peak:.1} MiB (from {rss_before:.1}) under {connections} slow readers"
    );
    assert!(stalled >= 1.0, "no stalled connection was closed");
    drop(holders);
    assert!(one_valid_call(&mut normal, &key).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_and_probes_answer_under_a_flood_at_a_low_file_limit() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let served = start(
        &jwks,
        "server:\n  preface_timeout_secs: 2\n",
        &[("TOKEN_VALIDATOR__METRICS__IDLE_TIMEOUT_SECS", "2")],
        Some(1024),
    )
    .await;
    let channel = token_validator::grpc::client::connect(&served.url, TIMEOUT)
        .await
        .unwrap();
    let mut client = proto::token_validator_client::TokenValidatorClient::new(channel);
    assert!(one_valid_call(&mut client, &key).await.is_some());

    // 1,100 connections to the gRPC port that never send the preface, and 50
    // to the side port that never finish their request headers.
    let mut silent = Vec::new();
    for _ in 0..1_100 {
        silent.push(TcpStream::connect(served.addr).await.unwrap());
    }
    let side: SocketAddr = format!("127.0.0.1:{}", served.metrics_port)
        .parse()
        .unwrap();
    let mut partial = Vec::new();
    for _ in 0..50 {
        let mut tcp = TcpStream::connect(side).await.unwrap_or_else(|e| {
            panic!(
                "side port: {e}; log:\n{}",
                std::fs::read_to_string(&served.log).unwrap()
            )
        });
        tokio::io::AsyncWriteExt::write_all(&mut tcp, b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        partial.push(tcp);
    }
    // Meanwhile: probes and calls on an established connection are answered.
    for _ in 0..3 {
        assert!(served.healthz().await, "/healthz failed during the flood");
        assert!(one_valid_call(&mut client, &key).await.is_some());
    }
    // Every silent connection is closed by its bound (bounded wait).
    let closed = |mut tcp: TcpStream| async move {
        let mut buf = [0u8; 64];
        loop {
            match tokio::time::timeout(TIMEOUT, tcp.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue, // the side port's 408, then the close
                Err(_) => return false,
            }
        }
    };
    let mut waits = Vec::new();
    for tcp in partial.into_iter().chain(silent.into_iter().take(200)) {
        waits.push(tokio::spawn(closed(tcp)));
    }
    for wait in waits {
        assert!(wait.await.unwrap(), "a silent connection stayed open");
    }
    assert!(served.healthz().await);
    assert!(
        eventually(|| async {
            served
                .metric(
                    "token_validator_connections_closed_total",
                    "reason=\"preface_timeout\"",
                )
                .await
                >= 200.0
        })
        .await
    );
    let log = std::fs::read_to_string(&served.log).unwrap();
    assert!(
        log.contains("max_connections lowered to fit the open-file limit"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soft_open_file_limit_is_raised_to_the_hard_limit_at_start() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let (port, metrics_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, serve_config(port, metrics_port, &jwks, "")).unwrap();
    let log = dir.path().join("stderr.log");
    // Soft 512, hard 2048: what systemd and many shells hand a process.
    let process = Process(
        Command::new("prlimit")
            .args(["--nofile=512:2048", BIN, "serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    assert!(wait_serving(&format!("http://127.0.0.1:{port}")).await);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", process.0.id())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect::<Vec<_>>();
    assert_eq!(open_files, ["2048", "2048"], "{limits}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("raised the open-file limit to the hard limit") && log.contains("512"),
        "{log}"
    );
}
