//! The gRPC load generator: a real tonic client that drives a running service
//! (`--addr`) or, by default, the service started in this process with the
//! built-in dev issuer. Every answer is checked against what its token must
//! get; a wrong `valid` or reason counts as an error.
//!
//!   cargo bench --bench load -- --duration 10s                  # closed loop, max throughput
//!   cargo bench --bench load -- --rate 10000 --duration 10s     # open loop at a fixed rate
//!   cargo bench --bench load -- --distinct 1 --cache off        # every call a full RS256 check
//!   cargo bench --bench load -- --random-kid 0.5                # a random-kid flood mixed in
//!   cargo bench --bench load -- --prepare DIR --tokens 1000     # keys + tokens for another server
//!   cargo bench --bench load -- --addr http://127.0.0.1:50051 --tokens-file DIR/tokens.txt
//!
//! Run by `cargo test --benches` (no `--bench` argument), it does a short
//! self-check instead: a small mixed run in-process that must have no errors.

mod report;
mod workload;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use rand::SeedableRng;
use report::Report;
use token_validator::{
    App, RunningService,
    dev::{DevIssuer, MintRequest, SigningKey},
    grpc::proto::{
        GetUserInfoRequest, Reason, ValidateTokenRequest,
        token_validator_client::TokenValidatorClient,
    },
};
use tonic::transport::Channel;
use workload::{Kind, Mix, Tokens};

#[derive(Parser, Clone)]
#[command(name = "load", about = "gRPC load generator for token-validator")]
struct Args {
    /// A running service; by default one is started in this process with the dev issuer.
    #[arg(long)]
    addr: Option<String>,
    /// HTTP/2 connections (requests are spread round-robin).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests in flight at once (closed loop); the in-flight cap (open loop).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long to send (e.g. 10s, 500ms); ignored with --requests.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Stop after this many requests instead of after --duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Open loop at this many requests/s (latency from the scheduled send time);
    /// omitted: closed loop at max throughput.
    #[arg(long)]
    rate: Option<f64>,
    /// Warm-up before measuring (not counted).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    #[arg(long, value_enum, default_value = "validate")]
    rpc: Rpc,
    /// Share of requests carrying the next token of the pool (cache misses while the pool lasts).
    #[arg(long, default_value_t = 0.0)]
    distinct: f64,
    /// Share of requests with a tampered signature (answer must be BAD_SIGNATURE).
    #[arg(long, default_value_t = 0.0)]
    invalid: f64,
    /// Share of requests with a random kid (answer must be UNKNOWN_KEY).
    #[arg(long, default_value_t = 0.0)]
    random_kid: f64,
    /// Size of the pool of distinct valid tokens to mint.
    #[arg(long, default_value_t = 1000)]
    tokens: usize,
    /// Read the valid tokens from this file (one per line) instead of minting.
    #[arg(long)]
    tokens_file: Option<PathBuf>,
    /// Mint through a `token-validator dev` issuer's POST /dev/tokens.
    #[arg(long)]
    mint_url: Option<String>,
    /// The in-process service's verified-token cache.
    #[arg(long, value_enum, default_value = "on")]
    cache: Switch,
    /// Write DIR/jwks.json and DIR/tokens.txt (a fresh key, --issuer, --client-id) and exit.
    #[arg(long)]
    prepare: Option<PathBuf>,
    #[arg(
        long,
        default_value = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench1"
    )]
    issuer: String,
    #[arg(long, default_value = "benchclient0000000000000001")]
    client_id: String,
    /// PID of the server, to report its RSS (in-process: this process).
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's Prometheus URL, to report JWKS fetches during the run.
    #[arg(long)]
    metrics_url: Option<String>,
    /// A label for the report.
    #[arg(long, default_value = "token-validator")]
    label: String,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Rpc {
    Validate,
    Userinfo,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |i| text.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}"))?;
    let seconds = match unit {
        "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        _ => return Err(format!("bad duration unit in {text:?} (use ms, s or m)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn main() -> std::process::ExitCode {
    let raw: Vec<String> = std::env::args().collect();
    let benching = raw.iter().any(|a| a == "--bench");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = if benching {
        let args = Args::parse_from(raw.into_iter().filter(|a| a != "--bench"));
        runtime.block_on(run(args))
    } else {
        runtime.block_on(self_check())
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(error) => {
            eprintln!("load: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// What `cargo test --benches` runs: a small mixed run that must be error-free.
async fn self_check() -> anyhow::Result<bool> {
    let args = Args::parse_from([
        "load",
        "--requests",
        "400",
        "--warmup",
        "0s",
        "--distinct",
        "0.3",
        "--invalid",
        "0.2",
        "--random-kid",
        "0.2",
        "--tokens",
        "20",
        "--concurrency",
        "16",
        "--label",
        "self-check",
    ]);
    let ok = run(args.clone()).await?;
    let open = Args::parse_from([
        "load",
        "--rate",
        "300",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--invalid",
        "0.5",
        "--tokens",
        "5",
        "--rpc",
        "userinfo",
        "--label",
        "self-check open loop userinfo",
    ]);
    Ok(ok && run(open).await?)
}

async fn run(args: Args) -> anyhow::Result<bool> {
    if let Some(dir) = &args.prepare {
        prepare(dir, &args)?;
        return Ok(true);
    }
    let mix = Mix {
        distinct: args.distinct,
        invalid: args.invalid,
        random_kid: args.random_kid,
    };
    anyhow::ensure!(
        mix.distinct + mix.invalid + mix.random_kid <= 1.0,
        "--distinct + --invalid + --random-kid must not exceed 1"
    );
    // The in-process service, when no --addr is given.
    let mut local: Option<(DevIssuer, RunningService)> = None;
    let addr = match &args.addr {
        Some(addr) => addr.clone(),
        None => {
            let issuer = DevIssuer::start("127.0.0.1:0".parse()?).await?;
            let mut config = issuer.service_config("127.0.0.1:0");
            config.token_cache.enabled = args.cache == Switch::On;
            let service = App::spawn(config).await?;
            anyhow::ensure!(
                service.wait_ready(Duration::from_secs(10)).await,
                "service not ready"
            );
            let url = service.url();
            local = Some((issuer, service));
            url
        }
    };
    let valid = match (&args.tokens_file, &args.mint_url, &local) {
        (Some(file), _, _) => std::fs::read_to_string(file)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect(),
        (None, Some(url), _) => mint_over_http(url, args.tokens, args.rpc).await?,
        (None, None, Some((issuer, _))) => (0..args.tokens)
            .map(|i| {
                let minted = issuer.mint(&MintRequest {
                    username: Some(format!("load-{i}")),
                    ..MintRequest::default()
                });
                if args.rpc == Rpc::Userinfo {
                    minted.access_token
                } else {
                    minted.id_token
                }
            })
            .collect(),
        (None, None, None) => anyhow::bail!("with --addr, give --tokens-file or --mint-url"),
    };
    let tokens = Arc::new(Tokens::new(valid)?);
    let channels = connect(&addr, args.connections).await?;
    let metrics_url = args.metrics_url.clone().or_else(|| {
        local
            .as_ref()
            .and_then(|(_, s)| s.metrics_addr.map(|a| format!("http://{a}/metrics")))
    });

    if !args.warmup.is_zero() {
        let warm = Args {
            duration: args.warmup,
            requests: None,
            rate: None,
            ..args.clone()
        };
        drive(&warm, &channels, &tokens, mix).await;
    }
    let fetches_before = jwks_fetches(metrics_url.as_deref()).await;
    let mut report = drive(&args, &channels, &tokens, mix).await;
    report.jwks_fetches = match (fetches_before, jwks_fetches(metrics_url.as_deref()).await) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    report.server_rss_mib = args
        .server_pid
        .or(local.as_ref().map(|_| std::process::id()))
        .and_then(report::rss_mib);
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.table());
    }
    if let Some((_, service)) = local {
        service.stop().await?;
    }
    Ok(report.error_count() == 0)
}

async fn connect(
    addr: &str,
    connections: usize,
) -> anyhow::Result<Vec<TokenValidatorClient<Channel>>> {
    let mut clients = Vec::new();
    for _ in 0..connections.max(1) {
        // One Endpoint::connect per client: each is its own HTTP/2 connection.
        let channel = tonic::transport::Endpoint::from_shared(addr.to_string())?
            .tcp_nodelay(true)
            .connect()
            .await?;
        clients.push(TokenValidatorClient::new(channel));
    }
    Ok(clients)
}

async fn jwks_fetches(url: Option<&str>) -> Option<f64> {
    let text = reqwest::get(url?).await.ok()?.text().await.ok()?;
    Some(report::prometheus_sum(
        &text,
        "token_validator_jwks_fetches_total",
    ))
}

async fn mint_over_http(url: &str, count: usize, rpc: Rpc) -> anyhow::Result<Vec<String>> {
    let http = reqwest::Client::new();
    let mut tokens = Vec::with_capacity(count);
    for i in 0..count {
        let minted: serde_json::Value = http
            .post(url)
            .json(&serde_json::json!({"username": format!("load-{i}")}))
            .send()
            .await?
            .json()
            .await?;
        let field = if rpc == Rpc::Userinfo {
            "access_token"
        } else {
            "id_token"
        };
        tokens.push(minted[field].as_str().unwrap_or_default().to_string());
    }
    Ok(tokens)
}

/// Writes a fresh key's JWKS and tokens signed by it, for servers the load generator did not start.
fn prepare(dir: &std::path::Path, args: &Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let key = SigningKey::generate("bench-key-1")?;
    std::fs::write(
        dir.join("jwks.json"),
        serde_json::json!({"keys": [key.jwk()]}).to_string(),
    )?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let tokens: Vec<String> = (0..args.tokens)
        .map(|i| {
            key.sign_claims(&serde_json::json!({
                "sub": format!("00000000-0000-0000-0000-{i:012}"),
                "iss": args.issuer,
                "client_id": args.client_id,
                "token_use": "access",
                "scope": "openid api/read",
                "username": format!("load-{i}"),
                "cognito:groups": ["users"],
                "auth_time": now, "iat": now, "exp": now + 4 * 3600,
                "jti": format!("bench-{i}"),
            }))
        })
        .collect();
    std::fs::write(dir.join("tokens.txt"), tokens.join("\n") + "\n")?;
    eprintln!(
        "wrote {} and {} tokens",
        dir.join("jwks.json").display(),
        tokens.len()
    );
    Ok(())
}

/// Sends the run's requests and collects what came back.
async fn drive(
    args: &Args,
    clients: &[TokenValidatorClient<Channel>],
    tokens: &Arc<Tokens>,
    mix: Mix,
) -> Report {
    let report = Arc::new(Mutex::new(Report::new(args.label.clone())));
    let started = Instant::now();
    let deadline = started + args.duration;
    let limit = args.requests;
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let rpc = args.rpc;
    match args.rate {
        None => {
            let mut workers = Vec::new();
            for worker in 0..args.concurrency.max(1) {
                let client = clients[worker % clients.len()].clone();
                let (tokens, report, sent) = (tokens.clone(), report.clone(), sent.clone());
                workers.push(tokio::spawn(async move {
                    let mut rng = rand::rngs::SmallRng::seed_from_u64(worker as u64);
                    let mut local = Report::new(String::new());
                    loop {
                        let n = sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if limit.is_some_and(|l| n >= l)
                            || (limit.is_none() && Instant::now() >= deadline)
                        {
                            break;
                        }
                        let kind = mix.pick(&mut rng);
                        let token = tokens.token(kind, n, &mut rng);
                        let begin = Instant::now();
                        let answer = call(client.clone(), rpc, token).await;
                        record(&mut local, kind, answer, begin.elapsed());
                    }
                    report.lock().unwrap().merge(&local);
                }));
            }
            for worker in workers {
                let _ = worker.await;
            }
        }
        Some(rate) => {
            // Open loop: request i is due at start + i/rate, whatever came back before.
            let in_flight = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1) * 64));
            let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
            let mut tasks = tokio::task::JoinSet::new();
            let mut n: u64 = 0;
            loop {
                let due = started + Duration::from_secs_f64(n as f64 / rate);
                if limit.is_some_and(|l| n >= l) || (limit.is_none() && due >= deadline) {
                    break;
                }
                if due > Instant::now() {
                    tokio::time::sleep_until(due.into()).await;
                }
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    let mut r = report.lock().unwrap();
                    *r.errors.entry("client_overloaded".into()).or_default() += 1;
                    n += 1;
                    continue;
                };
                let kind = mix.pick(&mut rng);
                let token = tokens.token(kind, n, &mut rng);
                let client = clients[(n as usize) % clients.len()].clone();
                let report = report.clone();
                // Latency counts from the due time when the sender is behind schedule
                // (queueing shows: no coordinated omission), but not for the up to one
                // timer tick (1 ms) by which a sleep can overshoot a due time.
                let now = Instant::now();
                let start = if now.duration_since(due) > TIMER_TICK {
                    due
                } else {
                    now
                };
                tasks.spawn(async move {
                    let answer = call(client, rpc, token).await;
                    let mut r = report.lock().unwrap();
                    record(&mut r, kind, answer, start.elapsed());
                    drop(permit);
                });
                n += 1;
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        }
    }
    let mut report = Arc::try_unwrap(report)
        .ok()
        .expect("all workers finished")
        .into_inner()
        .unwrap();
    report.elapsed = started.elapsed();
    report.target_rate = args.rate;
    report
}

/// Tokio's timer resolution: a sleep may end this much after its deadline.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// The answer to one request: the reason (Unspecified = valid) or a gRPC error code name.
type Answer = Result<Reason, String>;

async fn call(mut client: TokenValidatorClient<Channel>, rpc: Rpc, token: String) -> Answer {
    match rpc {
        Rpc::Validate => client
            .validate_token(ValidateTokenRequest {
                token,
                ..Default::default()
            })
            .await
            .map(|r| {
                let r = r.into_inner();
                let reason = Reason::try_from(r.reason).unwrap_or(Reason::Unspecified);
                // A valid flag that disagrees with the reason is itself a wrong answer.
                if r.valid == (reason == Reason::Unspecified) {
                    reason
                } else {
                    Reason::Malformed
                }
            })
            .map_err(|s| format!("{:?}", s.code())),
        Rpc::Userinfo => match client.get_user_info(GetUserInfoRequest { token }).await {
            Ok(_) => Ok(Reason::Unspecified),
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                let name = status.message().split(':').next().unwrap_or_default();
                Ok(Reason::from_str_name(name).unwrap_or(Reason::Malformed))
            }
            Err(status) => Err(format!("{:?}", status.code())),
        },
    }
}

fn record(report: &mut Report, kind: Kind, answer: Answer, latency: Duration) {
    let _ = report.latency.record((latency.as_micros() as u64).max(1));
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
