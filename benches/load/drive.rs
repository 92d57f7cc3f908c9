//! Sending a run's requests: one OS thread per client thread, each with its own
//! single-threaded tokio runtime and its own HTTP/2 connections.
//!
//! Why not one multi-threaded runtime: on a box the client shares with the
//! server, every cycle the client spends is taken from the server. A request
//! that crosses worker threads of a multi-threaded runtime pays futex wake-ups
//! and cache misses; measured here, such a client spent ~32 µs of CPU per call
//! against ~18 µs for single-threaded ones. Independent single-threaded
//! clients (like `wrk`'s thread-per-connection-group) keep the client cheap and
//! still use every core when the server is fast enough to need it.

use std::{
    sync::{
        Arc, Barrier, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rand::SeedableRng;
use token_validator::grpc::{
    Coalesced,
    proto::{
        GetUserInfoRequest, Reason, ValidateTokenRequest,
        token_validator_client::TokenValidatorClient,
    },
};
use tonic::transport::Channel;

use crate::{
    report::Report,
    workload::{Kind, Mix, Tokens},
};

/// Which RPC a run calls.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Rpc {
    Validate,
    Userinfo,
    /// Envoy's ext_authz `Check`, the token in the request's `authorization` header.
    Check,
}

/// What to send, how hard and for how long.
#[derive(Clone)]
pub struct Plan {
    pub addr: String,
    pub rpc: Rpc,
    /// Every request asks for the revocation check.
    pub check_revocation: bool,
    pub mix: Mix,
    /// Client threads, each with its own runtime and connections.
    pub threads: usize,
    /// HTTP/2 connections in all (spread over the threads, at least one each).
    pub connections: usize,
    /// Requests in flight in all (closed loop); open loop: the in-flight cap is 64× this.
    pub concurrency: usize,
    pub duration: Duration,
    pub requests: Option<u64>,
    /// Open loop at this many requests/s; `None`: closed loop at max throughput.
    pub rate: Option<f64>,
    pub label: String,
}

/// Sends the plan's requests from `plan.threads` threads and merges what came back.
/// Connections are made before the clock starts.
pub fn drive(plan: &Plan, tokens: &Arc<Tokens>) -> anyhow::Result<Report> {
    let threads = plan.threads.max(1);
    let ready = Arc::new(Barrier::new(threads + 1));
    let go = Arc::new(Barrier::new(threads + 1));
    let started = Arc::new(OnceLock::new());
    let sent = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let share = Share {
                thread,
                threads,
                connections: split(plan.connections.max(threads), threads, thread),
                concurrency: split(plan.concurrency.max(threads), threads, thread),
            };
            let (plan, tokens) = (plan.clone(), tokens.clone());
            let (ready, go, started, sent) =
                (ready.clone(), go.clone(), started.clone(), sent.clone());
            std::thread::spawn(move || -> anyhow::Result<Report> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let clients = match &runtime {
                    Ok(runtime) => runtime.block_on(connect(&plan.addr, share.connections)),
                    Err(error) => Err(anyhow::anyhow!("client runtime: {error}")),
                };
                // Every thread reaches both barriers, connected or not, so none waits forever.
                ready.wait();
                go.wait();
                let (runtime, clients) = (runtime?, clients?);
                let started = *started.get().expect("set before go");
                Ok(runtime.block_on(send(&plan, share, &clients, &tokens, started, &sent)))
            })
        })
        .collect();
    ready.wait();
    let begin = Instant::now();
    let _ = started.set(begin);
    go.wait();
    let mut report = Report::new(plan.label.clone());
    let mut failure = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(part)) => report.merge(&part),
            Ok(Err(error)) => failure = Some(error),
            Err(_) => failure = Some(anyhow::anyhow!("a client thread panicked")),
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    report.elapsed = begin.elapsed();
    report.target_rate = plan.rate;
    report.client = format!(
        "{threads} client thread(s), {} connection(s), {} in flight",
        plan.connections.max(threads),
        plan.concurrency.max(threads)
    );
    Ok(report)
}

/// One thread's part of the plan.
#[derive(Clone, Copy)]
struct Share {
    thread: usize,
    threads: usize,
    connections: usize,
    concurrency: usize,
}

/// Part `index` of `total` split into `parts` nearly equal parts.
fn split(total: usize, parts: usize, index: usize) -> usize {
    total / parts + usize::from(index < total % parts)
}

async fn connect(addr: &str, connections: usize) -> anyhow::Result<Vec<Channel>> {
    let mut clients = Vec::new();
    for _ in 0..connections.max(1) {
        // One connect per client: each is its own HTTP/2 connection. Its
        // writes are coalesced as the server's are (`Coalesced`): a request's
        // HEADERS, ~1 KiB DATA and end of stream leave in one write, not 2–3.
        let channel = tonic::transport::Endpoint::from_shared(addr.to_string())?
            .connect_with_connector(tower::service_fn(|uri: http::Uri| async move {
                let unusable = |why: &str| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("--addr {uri}: {why}"),
                    )
                };
                if uri.scheme_str() != Some("http") {
                    return Err(unusable("only http:// is supported"));
                }
                let host = uri.host().ok_or_else(|| unusable("no host"))?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let stream =
                    tokio::net::TcpStream::connect((host, uri.port_u16().unwrap_or(80))).await?;
                stream.set_nodelay(true)?;
                Ok(hyper_util::rt::TokioIo::new(Coalesced::new(stream)))
            }))
            .await?;
        clients.push(channel);
    }
    Ok(clients)
}

/// One thread's requests: closed loop (`share.concurrency` workers) or open
/// loop (every `threads`-th request of the run's schedule, from `thread` on).
async fn send(
    plan: &Plan,
    share: Share,
    clients: &[Channel],
    tokens: &Arc<Tokens>,
    started: Instant,
    sent: &Arc<AtomicU64>,
) -> Report {
    let deadline = started + plan.duration;
    let limit = plan.requests;
    let rpc = plan.rpc;
    let revocation = plan.check_revocation;
    let mix = plan.mix;
    let report = Arc::new(Mutex::new(Report::new(String::new())));
    match plan.rate {
        None => {
            let mut workers = tokio::task::JoinSet::new();
            for worker in 0..share.concurrency {
                let client = clients[worker % clients.len()].clone();
                let (tokens, report, sent) = (tokens.clone(), report.clone(), sent.clone());
                let seed = (share.thread * 1_000_003 + worker) as u64;
                workers.spawn(async move {
                    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
                    let mut local = Report::new(String::new());
                    loop {
                        let n = sent.fetch_add(1, Ordering::Relaxed);
                        if limit.is_some_and(|l| n >= l)
                            || (limit.is_none() && Instant::now() >= deadline)
                        {
                            break;
                        }
                        let kind = mix.pick(&mut rng);
                        let token = tokens.token(kind, n, &mut rng);
                        let begin = Instant::now();
                        let answer = call(client.clone(), rpc, token, revocation).await;
                        record(&mut local, kind, answer, begin.elapsed());
                    }
                    report.lock().unwrap().merge(&local);
                });
            }
            while workers.join_next().await.is_some() {}
        }
        Some(rate) => {
            // Open loop: request n is due at start + n/rate, whatever came back before.
            // A pacer thread sleeps to the next due time (nanosleep: tokio's timer ticks
            // in whole milliseconds and would send in bursts up to 2 ms late) but never
            // less than PACER_TICK, and hands this runtime every request already due, in
            // one batch. Latency counts from each request's due time, always: a request
            // sent late (by up to a tick, or for any other reason) shows as latency.
            let (due_tx, mut due_rx) =
                tokio::sync::mpsc::unbounded_channel::<Vec<(u64, Instant)>>();
            let threads = share.threads as u64;
            let pacer = std::thread::spawn(move || {
                let due_of = |n: u64| started + Duration::from_secs_f64(n as f64 / rate);
                let finished = |n: u64| {
                    limit.is_some_and(|l| n >= l) || (limit.is_none() && due_of(n) >= deadline)
                };
                let mut n = share.thread as u64;
                while !finished(n) {
                    let now = Instant::now();
                    let mut batch = Vec::new();
                    while !finished(n) && due_of(n) <= now {
                        batch.push((n, due_of(n)));
                        n += threads;
                    }
                    if !batch.is_empty() && due_tx.send(batch).is_err() {
                        break;
                    }
                    let wait = due_of(n).saturating_duration_since(Instant::now());
                    std::thread::sleep(wait.max(PACER_TICK));
                }
            });
            let in_flight = Arc::new(tokio::sync::Semaphore::new(share.concurrency * 64));
            let mut rng = rand::rngs::SmallRng::seed_from_u64(7 + share.thread as u64);
            let mut tasks = tokio::task::JoinSet::new();
            let mut pending = std::collections::VecDeque::new();
            let mut send_lag = crate::report::micros_histogram();
            while let Some((n, due)) = next_due(&mut due_rx, &mut pending).await {
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    let mut r = report.lock().unwrap();
                    *r.errors.entry("client_overloaded".into()).or_default() += 1;
                    continue;
                };
                let kind = mix.pick(&mut rng);
                let token = tokens.token(kind, n, &mut rng);
                let client = clients[(n / threads) as usize % clients.len()].clone();
                // How late the client itself sends: part of every latency counted from due.
                let _ = send_lag.record((due.elapsed().as_micros() as u64).max(1));
                let report = report.clone();
                tasks.spawn(async move {
                    let answer = call(client, rpc, token, revocation).await;
                    let mut r = report.lock().unwrap();
                    record(&mut r, kind, answer, due.elapsed());
                    drop(permit);
                });
                while tasks.try_join_next().is_some() {}
            }
            let _ = pacer.join();
            while tasks.join_next().await.is_some() {}
            report.lock().unwrap().send_lag = send_lag;
        }
    }
    Arc::try_unwrap(report)
        .ok()
        .expect("all workers finished")
        .into_inner()
        .unwrap()
}

/// The pacer's shortest sleep: it wakes at most ~5,000 times a second, however high the rate.
const PACER_TICK: Duration = Duration::from_micros(200);

/// The next due request: from the batch at hand, else from the pacer's next batch.
async fn next_due(
    batches: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<(u64, Instant)>>,
    pending: &mut std::collections::VecDeque<(u64, Instant)>,
) -> Option<(u64, Instant)> {
    if pending.is_empty() {
        pending.extend(batches.recv().await?);
    }
    pending.pop_front()
}

/// The answer to one request: the reason (Unspecified = valid) or a gRPC error code name.
type Answer = Result<Reason, String>;

/// The two fields of a `ValidateTokenResponse` the load generator checks.
/// Decoding only these (prost skips the rest without copying) keeps the
/// client's CPU, taken from the server on a shared box, the same whatever a
/// server puts in its claims; every server is measured through this one type.
#[derive(Clone, PartialEq, prost::Message)]
struct ValidateTokenAnswer {
    #[prost(bool, tag = "1")]
    valid: bool,
    #[prost(enumeration = "Reason", tag = "2")]
    reason: i32,
}

async fn validate(
    channel: Channel,
    token: String,
    check_revocation: bool,
) -> Result<ValidateTokenAnswer, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unknown(format!("not ready: {e}")))?;
    let codec = tonic_prost::ProstCodec::<ValidateTokenRequest, ValidateTokenAnswer>::default();
    let path =
        http::uri::PathAndQuery::from_static("/tokenvalidator.v1.TokenValidator/ValidateToken");
    let request = tonic::Request::new(ValidateTokenRequest {
        token,
        check_revocation,
        ..Default::default()
    });
    grpc.unary(request, path, codec)
        .await
        .map(tonic::Response::into_inner)
}

async fn call(channel: Channel, rpc: Rpc, token: String, revocation: bool) -> Answer {
    match rpc {
        Rpc::Validate => validate(channel, token, revocation)
            .await
            .map(|r| {
                let reason = Reason::try_from(r.reason).unwrap_or(Reason::Unspecified);
                // A valid flag that disagrees with the reason is itself a wrong answer.
                if r.valid == (reason == Reason::Unspecified) {
                    reason
                } else {
                    Reason::Malformed
                }
            })
            .map_err(|s| format!("{:?}", s.code())),
        Rpc::Check => check(channel, token, revocation).await,
        Rpc::Userinfo => match TokenValidatorClient::new(channel)
            .get_user_info(GetUserInfoRequest { token })
            .await
        {
            Ok(_) => Ok(Reason::Unspecified),
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                let name = status.message().split(':').next().unwrap_or_default();
                Ok(Reason::from_str_name(name).unwrap_or(Reason::Malformed))
            }
            Err(status) => Err(format!("{:?}", status.code())),
        },
    }
}

/// A `Check` as Envoy sends it; the answer's reason from the denial's JSON body.
async fn check(channel: Channel, token: String, revocation: bool) -> Answer {
    use envoy_types::pb::envoy::service::auth::v3::{
        AttributeContext, CheckRequest, attribute_context,
        authorization_client::AuthorizationClient, check_response::HttpResponse,
    };
    let http = attribute_context::HttpRequest {
        method: "GET".into(),
        path: "/".into(),
        headers: [("authorization".to_string(), format!("Bearer {token}"))].into(),
        ..Default::default()
    };
    let mut attributes = AttributeContext {
        request: Some(attribute_context::Request {
            http: Some(http),
            ..Default::default()
        }),
        ..Default::default()
    };
    if revocation {
        attributes
            .context_extensions
            .insert("check_revocation".into(), "true".into());
    }
    let request = CheckRequest {
        attributes: Some(attributes),
    };
    let response = AuthorizationClient::new(channel)
        .check(request)
        .await
        .map_err(|s| format!("{:?}", s.code()))?
        .into_inner();
    match response.http_response {
        Some(HttpResponse::OkResponse(_)) => Ok(Reason::Unspecified),
        Some(HttpResponse::DeniedResponse(denied)) => {
            let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap_or_default();
            let name = body["reason"].as_str().unwrap_or_default();
            Ok(Reason::from_str_name(name).unwrap_or(Reason::Malformed))
        }
        other => Err(format!("unexpected answer {other:?}")),
    }
}

fn record(report: &mut Report, kind: Kind, answer: Answer, latency: Duration) {
    let micros = (latency.as_micros() as u64).max(1);
    let _ = report.latency.record(micros);
    if kind.expected_reason() == Reason::Unspecified {
        let _ = report.valid_latency.record(micros);
    }
    match answer {
        Ok(reason) if reason == kind.expected_reason() => {
            report.ok += 1;
            *report
                .reasons
                .entry(reason.as_str_name().into())
                .or_default() += 1;
        }
        Ok(reason) => {
            *report
                .errors
                .entry(format!("wrong_answer({})", reason.as_str_name()))
                .or_default() += 1;
        }
        Err(code) => *report.errors.entry(code).or_default() += 1,
    }
}
