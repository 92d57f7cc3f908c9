//! The command line: `serve`, `check-config`, `dev`, `validate`, `userinfo`, `health`.
//!
//! Client commands exit 0 when the answer is good (valid token, profile,
//! SERVING, a good config), 1 when it is a clear "no" (invalid token,
//! unauthenticated, a bad config), and 2
//! when no answer could be had (bad arguments, service unreachable, gRPC
//! error). `health` exits 1 for anything but SERVING, unreachable included, as
//! container health checks expect. `--addr` takes `http://HOST:PORT` or
//! `HOST:PORT`, `http(s)://HOST:PORT` or `unix:PATH`.

/// `println!` that does not panic when stdout is closed early (`| head`,
/// `| diff -q - FILE`): what could not be written is dropped.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod client_commands;
mod dev_command;
pub mod json;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};

use crate::{
    App, Config,
    config::{ConfigError, ListenAddr},
    telemetry::{self, LogFormat},
};
use client_commands::{Demands, health, userinfo, validate};

#[derive(Parser)]
#[command(
    name = "token-validator",
    version,
    about = "Validates Amazon Cognito tokens over gRPC"
)]
struct Cli {
    /// Log format (default: json when stderr is not a terminal).
    #[arg(long, global = true, value_enum, env = "TOKEN_VALIDATOR_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service from configuration (YAML file and/or environment).
    Serve {
        /// YAML config file; COGNITO_REGION, COGNITO_USER_POOL_ID and COGNITO_CLIENT_IDS suffice for one pool.
        #[arg(long, env = "TOKEN_VALIDATOR_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check a configuration as `serve` would load it (file and environment),
    /// binding nothing: exit 0 when good, 1 with the problem on one line.
    CheckConfig {
        /// YAML config file (as for `serve`).
        #[arg(long, env = "TOKEN_VALIDATOR_CONFIG")]
        config: Option<PathBuf>,
        /// Write the effective configuration (defaults included) as YAML on stdout.
        #[arg(long)]
        print: bool,
    },
    /// Print the JSON Schema of the configuration file (config.schema.json).
    ConfigSchema {
        /// The `config` section of the Helm chart's values.schema.json instead.
        #[arg(long)]
        chart: bool,
    },
    /// Run the service with an embedded local user pool (no AWS account) and print tokens to try.
    Dev {
        /// gRPC listen address: HOST:PORT or unix:///path/to.sock.
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: ListenAddr,
        /// Address of the local issuer (JWKS, GetUser, token minting); the
        /// issuer URL in tokens contains it. Default: the address saved in
        /// --state-dir, else 127.0.0.1:50052 (127.0.0.1:0: any free port).
        #[arg(long)]
        issuer_listen: Option<SocketAddr>,
        /// Keep the signing key and the issuer address here, so tokens minted
        /// before a restart stay valid after it.
        #[arg(long, env = "TOKEN_VALIDATOR_DEV_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// Metrics and HTTP probe port (/metrics, /healthz, /readyz).
        #[arg(long, default_value = "127.0.0.1:0")]
        metrics_listen: SocketAddr,
        /// A config file whose settings apply too (e.g. `gateway` routes); the
        /// dev pool is added to its pools, and the flags' addresses win.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print one JSON line (addresses and tokens) for scripts instead of the banner.
        #[arg(long)]
        json: bool,
        /// Print only this token on stdout, for scripts.
        #[arg(long, value_enum, conflicts_with = "json")]
        print_token: Option<TokenKind>,
    },
    /// Ask a running service to validate TOKEN ("-" reads it from stdin).
    Validate {
        token: String,
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// Expected token kind.
        #[arg(long, value_enum)]
        token_use: Option<TokenKind>,
        /// Required scope (repeatable; all must be present).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Accepted group (repeatable; any one suffices).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Ask Cognito whether the token was revoked (where its pool allows it:
        /// `pools[].revocation.check: on_request`).
        #[arg(long)]
        check_revocation: bool,
        /// Print the full answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ask a running service who the user of TOKEN is ("-" reads it from stdin).
    Userinfo {
        token: String,
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        #[arg(long)]
        json: bool,
    },
    /// gRPC health check of a running service: exit 0 when SERVING, 1 otherwise.
    Health {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// Service to check ("" is the whole server).
        #[arg(long, default_value = "")]
        service: String,
        #[arg(long, default_value_t = 3)]
        timeout_secs: u64,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TokenKind {
    Id,
    Access,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    // The OTLP gRPC exporter needs the runtime's context when it is built.
    let telemetry = {
        let _context = runtime.enter();
        telemetry::init(cli.log_format)
    };
    let code = runtime.block_on(run(cli.command));
    drop(telemetry);
    // Background tasks (key refresh) must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

async fn run(command: Command) -> ExitCode {
    match command {
        Command::Serve { config } => report(serve(config).await),
        Command::CheckConfig { config, print } => check_config(config, print),
        Command::ConfigSchema { chart } => {
            let schema = match chart {
                true => crate::config::chart_schema(),
                false => crate::config::json_schema(),
            };
            say!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Command::Dev {
            listen,
            issuer_listen,
            state_dir,
            metrics_listen,
            config,
            json,
            print_token,
        } => report(
            dev_command::run(dev_command::DevArgs {
                listen,
                issuer_listen,
                state_dir,
                metrics_listen,
                config,
                json_output: json,
                print_token,
            })
            .await,
        ),
        Command::Validate {
            token,
            addr,
            token_use,
            scopes,
            groups,
            check_revocation,
            json,
        } => {
            let demands = Demands {
                token_use,
                scopes,
                groups,
                check_revocation,
            };
            validate(token, addr, demands, json).await
        }
        Command::Userinfo { token, addr, json } => userinfo(token, addr, json).await,
        Command::Health {
            addr,
            service,
            timeout_secs,
        } => health(addr, service, timeout_secs).await,
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A config error is one line that says what it is already.
        Err(error) if error.is::<ConfigError>() => {
            eprintln!("{error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// `check-config`: load as `serve` does, bind nothing.
fn check_config(file: Option<PathBuf>, print: bool) -> ExitCode {
    match Config::load(file.as_deref()) {
        Ok(config) => {
            if print {
                say!("{}", config.to_yaml().trim_end());
            }
            let pools: Vec<&str> = config.pools.iter().map(|p| p.name.as_str()).collect();
            eprintln!(
                "config: ok ({} pool{}: {})",
                pools.len(),
                if pools.len() == 1 { "" } else { "s" },
                pools.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(1)
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub(super) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(term) => term,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received");
}

/// Raises the open-file limit (see [`crate::net::raise_open_file_limit`]) and logs it.
pub(super) fn raise_open_file_limit() {
    match crate::net::raise_open_file_limit() {
        Ok((before, after)) if before != after => {
            tracing::info!(
                before,
                after,
                "raised the open-file limit to the hard limit"
            )
        }
        Ok((_, limit)) => tracing::info!(limit, "open-file limit"),
        Err(error) => tracing::warn!(%error, "cannot read or raise the open-file limit"),
    }
}

async fn serve(config_file: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(config_file.as_deref())?;
    tracing::info!(config = %config.to_json(), "effective configuration");
    raise_open_file_limit();
    let app = App::new(config)?;
    let listeners = app.bind().await?;
    let metrics = listeners.metrics.as_ref().and_then(|l| l.local_addr().ok());
    tracing::info!(
        listen = %listeners.grpc.local_addr(),
        metrics = %metrics.map_or_else(|| "off".to_string(), |addr| addr.to_string()),
        pools = %app.config.pools.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(","),
        "token-validator serving"
    );
    app.serve(listeners, shutdown_signal()).await
}
