//! A bounded soak: mixed valid, invalid and random-kid traffic over gRPC while
//! the JWKS endpoint flaps between up and down. No valid call may fail, and
//! after warm-up the process's RSS, file descriptors and Tokio tasks must stay
//! flat. `SOAK_SECS` sets the length (CI: 20 s; the documented long run:
//! `SOAK_SECS=180 cargo test --test soak -- --nocapture`).

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::*;
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
    let service = start_service(config).await;
    let client = client(&service).await;

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
    flapper.abort();
    let (rss_end, fds_end) = (rss_kib(), open_fds());
    let tasks_end = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();

    let total = sent.load(Ordering::Relaxed);
    println!(
        "soak {secs}s: {total} calls, RSS {rss_start} → {rss_end} KiB, fds {fds_start} → {fds_end}, tasks {tasks_start} → {tasks_end}, JWKS fetches {}",
        jwks.fetches()
    );
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
