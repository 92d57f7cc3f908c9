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

mod drive;
mod report;
mod workload;

use std::{path::PathBuf, sync::Arc, time::Duration};

use clap::{Parser, ValueEnum};
use drive::{Plan, Rpc};
use token_validator::{
    App, RunningService,
    dev::{DevIssuer, MintRequest, SigningKey},
};
use workload::{Mix, Tokens};

/// The service binary's allocator, so in-process runs match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Clone)]
#[command(name = "load", about = "gRPC load generator for token-validator")]
struct Args {
    /// A running service; by default one is started in this process with the dev issuer.
    #[arg(long)]
    addr: Option<String>,
    /// HTTP/2 connections (requests are spread round-robin). 8 × the server's
    /// 32 streams per connection carry the default 256 in flight.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Requests in flight at once (closed loop; 256 keeps this 2-core box's server busy,
    /// 64 left it idle between wake-ups, ~10% lower); open loop: the in-flight cap is 64× this.
    #[arg(long, default_value_t = 256)]
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
    /// Ask for the revocation check (`check_revocation`; Check: the
    /// `check_revocation` context extension). In-process, the dev pool checks
    /// on request, so answers are asked of its GetUser/AdminGetUser once per
    /// token and cache TTL.
    #[arg(long)]
    check_revocation: bool,
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
    /// Client threads, each with its own single-threaded runtime and share of the
    /// connections and requests in flight; default: one per core. (The in-process
    /// service has a runtime of its own.)
    #[arg(long)]
    client_threads: Option<usize>,
    /// A label for the report.
    #[arg(long, default_value = "token-validator")]
    label: String,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
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
    let args = benching.then(|| Args::parse_from(raw.into_iter().filter(|a| a != "--bench")));
    // The in-process service gets a runtime of its own, as it would in its own
    // process; the clients run on threads of their own (see drive.rs); this
    // thread's runtime only sets up, mints and reports.
    let server = tokio::runtime::Runtime::new().expect("tokio runtime");
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = match args {
        Some(args) => control.block_on(run(args, server.handle())),
        None => control.block_on(self_check(server.handle())),
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
async fn self_check(server: &tokio::runtime::Handle) -> anyhow::Result<bool> {
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
    let ok = run(args.clone(), server).await?;
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
    let check = Args::parse_from([
        "load",
        "--requests",
        "300",
        "--warmup",
        "0s",
        "--invalid",
        "0.3",
        "--tokens",
        "5",
        "--rpc",
        "check",
        "--label",
        "self-check ext_authz Check",
    ]);
    Ok(ok && run(open, server).await? && run(check, server).await?)
}

async fn run(args: Args, server: &tokio::runtime::Handle) -> anyhow::Result<bool> {
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
            let cache = args.cache == Switch::On;
            let (issuer, service) = server
                .spawn(async move {
                    let issuer = DevIssuer::start("127.0.0.1:0".parse()?).await?;
                    let mut config = issuer.service_config("127.0.0.1:0".parse().unwrap());
                    config.token_cache.enabled = cache;
                    let service = App::spawn(config).await?;
                    anyhow::ensure!(
                        service.wait_ready(Duration::from_secs(10)).await,
                        "service not ready"
                    );
                    Ok((issuer, service))
                })
                .await??;
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
    let metrics_url = args.metrics_url.clone().or_else(|| {
        local
            .as_ref()
            .and_then(|(_, s)| s.metrics_addr.map(|a| format!("http://{a}/metrics")))
    });

    let plan = Plan {
        addr,
        rpc: args.rpc,
        check_revocation: args.check_revocation,
        mix,
        threads: args
            .client_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        connections: args.connections,
        concurrency: args.concurrency,
        duration: args.duration,
        requests: args.requests,
        rate: args.rate,
        label: args.label.clone(),
    };
    if !args.warmup.is_zero() {
        let warm = Plan {
            duration: args.warmup,
            requests: None,
            rate: None,
            ..plan.clone()
        };
        drive::drive(&warm, &tokens)?;
    }
    let fetches_before = jwks_fetches(metrics_url.as_deref()).await;
    // CPU per call, of a server in another process and of this client: on a box
    // the two share, what each spends per call is what limits the other.
    let cpu_before = (
        args.server_pid.and_then(report::cpu_seconds),
        report::cpu_seconds(std::process::id()),
    );
    let mut report = drive::drive(&plan, &tokens)?;
    let calls = report.requests().max(1) as f64;
    let per_call = |before: Option<f64>, after: Option<f64>| Some((after? - before?) / calls * 1e6);
    report.server_cpu_us_per_call =
        per_call(cpu_before.0, args.server_pid.and_then(report::cpu_seconds));
    if local.is_none() {
        report.client_cpu_us_per_call =
            per_call(cpu_before.1, report::cpu_seconds(std::process::id()));
    }
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
        server.spawn(service.stop()).await??;
    }
    Ok(report.error_count() == 0)
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
    let sign = |i: usize| {
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
    };
    // RSA signing is ~0.4 ms a token: sign on every core (a million tokens in
    // minutes, not tens of minutes), one contiguous range per thread.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = args.tokens.div_ceil(threads).max(1);
    let parts: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.tokens)
            .step_by(per_thread)
            .map(|first| {
                let sign = &sign;
                let last = (first + per_thread).min(args.tokens);
                scope.spawn(move || (first..last).map(sign).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a signing thread panicked"))
            .collect()
    });
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("tokens.txt"))?);
    for token in parts.iter().flatten() {
        std::io::Write::write_all(&mut out, token.as_bytes())?;
        std::io::Write::write_all(&mut out, b"\n")?;
    }
    std::io::Write::flush(&mut out)?;
    eprintln!(
        "wrote {} and {} tokens",
        dir.join("jwks.json").display(),
        args.tokens
    );
    Ok(())
}
