//! A bounded soak: mixed valid, invalid and random-kid traffic over gRPC while
//! the JWKS endpoint flaps between up and down, and waves of hostile
//! connections (slow readers that never read an answer, connections that never
//! send the preface) come and go. No valid call may fail, every hostile
//! connection must be closed by the server's bounds, and after warm-up the
//! process's RSS, file descriptors and Tokio tasks must stay flat. `SOAK_SECS` sets the length (CI: 20 s; the documented long run:
//! `SOAK_SECS=180 cargo test --test soak -- --nocapture`).

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::{hostile::slow_reader, *};
use token_validator::{dev::SigningKey, grpc::proto::Reason};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_traffic_with_a_flapping_jwks_endpoint_stays_flat() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let key = SigningKey::generate("soak").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let mut config = config_for(&jwks.url());
    config.jwks.refresh_interval_secs = 1;
    config.jwks.unknown_kid_cooldown_secs = 2;
    config.audit.max_events_per_sec = 5;
    config.server.stall_timeout_secs = 1;
    config.server.preface_timeout_secs = 1;
    let service = start_service(config).await;
    let mut client = client(&service).await;
    // One round trip: the client knows the stream limit before the workers start.
    assert!(
        validate(&mut client, request(key.sign_claims(&id_claims())))
            .await
            .valid
    );

    let valid: Arc<Vec<String>> =
        Arc::new((0..200).map(|_| key.sign_claims(&id_claims())).collect());
    let forged = SigningKey::generate("soak")
        .unwrap()
        .sign_claims(&id_claims());
    let attacker = SigningKey::generate("x").unwrap();

    let flapper = {
        let jwks = jwks.clone();
        tokio::spawn(async move {
            for i in 0u64.. {
                jwks.set_mode(if i % 2 == 0 {
                    Mode::Status(503)
                } else {
                    Mode::Up
                });
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
        })
    };

    let deadline = Instant::now() + Duration::from_secs(secs);
    let warmed_up = Instant::now() + Duration::from_secs(secs / 4);
    let hostile = tokio::spawn(hostile_waves(service.addr.parse().unwrap(), deadline));
    let (sent, failed_valid) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut workers = Vec::new();
    for worker in 0..8u64 {
        let (mut client, valid, forged, sent, failed_valid) = (
            client.clone(),
            valid.clone(),
            forged.clone(),
            sent.clone(),
            failed_valid.clone(),
        );
        let attacker_key = SigningKey::generate(format!("x{worker}")).unwrap();
        workers.push(tokio::spawn(async move {
            let mut n = worker;
            while Instant::now() < deadline {
                n += 8;
                let (token, expected) = match n % 10 {
                    0..=5 => (
                        valid[(n as usize) % valid.len()].clone(),
                        Reason::Unspecified,
                    ),
                    6 | 7 => (forged.clone(), Reason::BadSignature),
                    _ => (
                        attacker_key.sign_with_header(
                            &serde_json::json!({"alg": "RS256", "kid": format!("r{n}")}),
                            &id_claims(),
                        ),
                        Reason::UnknownKey,
                    ),
                };
                let answer = validate(&mut client, request(token)).await;
                sent.fetch_add(1, Ordering::Relaxed);
                if reason_of(&answer) != expected {
                    if expected == Reason::Unspecified {
                        failed_valid.fetch_add(1, Ordering::Relaxed);
                    }
                    panic!(
                        "expected {expected:?}, got {:?}: {}",
                        reason_of(&answer),
                        answer.message
                    );
                }
            }
        }));
    }
    drop(attacker);

    tokio::time::sleep_until(warmed_up.into()).await;
    let (rss_start, fds_start) = (rss_kib(), open_fds());
    let tasks_start = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    for worker in workers {
        worker.await.expect("a worker saw a wrong answer");
    }
    let (waves, hostile_closed) = hostile
        .await
        .expect("a hostile connection was never closed");
    flapper.abort();
    let (rss_end, fds_end) = (rss_kib(), open_fds());
    let tasks_end = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();

    let total = sent.load(Ordering::Relaxed);
    println!(
        "soak {secs}s: {total} calls, {waves} hostile waves ({hostile_closed} connections closed by the server), RSS {rss_start} → {rss_end} KiB, fds {fds_start} → {fds_end}, tasks {tasks_start} → {tasks_end}, JWKS fetches {}",
        jwks.fetches()
    );
    assert!(waves >= 1, "no hostile wave ran");
    assert_eq!(failed_valid.load(Ordering::Relaxed), 0);
    assert!(total > 100, "only {total} calls");
    // Flat after warm-up: a bounded cache may still fill a little, nothing more.
    assert!(
        rss_end <= rss_start + rss_start / 5 + 8 * 1024,
        "RSS grew {rss_start} → {rss_end} KiB"
    );
    assert!(
        fds_end <= fds_start + 4,
        "file descriptors grew {fds_start} → {fds_end}"
    );
    // The 8 workers and the flapper ended; nothing else may have piled up.
    assert!(
        tasks_end <= tasks_start,
        "tasks grew {tasks_start} → {tasks_end}"
    );
}

/// Until `deadline`: waves of 10 slow readers (32 calls each, never reading an
/// answer) and 10 connections that never send the preface, each wave waiting
/// (bounded) until the server has closed every one of them. Returns the waves
/// and connections closed.
async fn hostile_waves(addr: std::net::SocketAddr, deadline: Instant) -> (usize, usize) {
    use tokio::io::AsyncReadExt;
    let (mut waves, mut closed) = (0, 0);
    while Instant::now() + Duration::from_secs(3) < deadline {
        let mut holders = Vec::new();
        for _ in 0..10 {
            let (_, holder) = slow_reader(addr, 32).await;
            holders.push(holder);
        }
        let mut silent = Vec::new();
        for _ in 0..10 {
            silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        for holder in holders {
            tokio::time::timeout(TIMEOUT, holder)
                .await
                .expect("a slow reader was not closed by the stall bound")
                .unwrap();
            closed += 1;
        }
        for mut tcp in silent {
            // The server's SETTINGS arrive first; then the close.
            let mut buf = [0u8; 64];
            let closing = async {
                while let Ok(n) = tcp.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            };
            tokio::time::timeout(TIMEOUT, closing)
                .await
                .expect("a silent connection was not closed by the preface bound");
            closed += 1;
        }
        waves += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (waves, closed)
}
