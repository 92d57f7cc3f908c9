//! `token-validator dev`: the service with an embedded local user pool, and a
//! banner whose commands run as printed.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde_json::json;

use super::{TokenKind, raise_open_file_limit, shutdown_signal};
use crate::{
    App, Config,
    config::ListenAddr,
    dev::{DEV_CLIENT_ID, DevIssuer, DevState, MintRequest, MintedTokens},
};

/// The issuer's address when neither `--issuer-listen` nor `--state-dir` says
/// one: fixed, so the issuer URL in tokens is the same after a restart.
pub const DEFAULT_ISSUER_LISTEN: &str = "127.0.0.1:50052";

pub struct DevArgs {
    pub listen: ListenAddr,
    pub issuer_listen: Option<SocketAddr>,
    pub state_dir: Option<PathBuf>,
    pub metrics_listen: SocketAddr,
    pub config: Option<PathBuf>,
    pub json_output: bool,
    pub print_token: Option<TokenKind>,
}

/// What the banner and `--json` report.
struct Running {
    grpc_addr: String,
    metrics_addr: String,
    /// The forward-auth port, when the config file enables it.
    gateway_url: Option<String>,
    issuer: DevIssuer,
    tokens: MintedTokens,
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let state = args.state_dir.as_deref().map(DevState::open).transpose()?;
    let saved = state.as_ref().map(DevState::load).transpose()?.flatten();
    let (saved_key, saved_addr) = match saved {
        Some((key, addr)) => (Some(key), Some(addr)),
        None => (None, None),
    };
    let issuer_listen = match args.issuer_listen.or(saved_addr) {
        Some(addr) => addr,
        None => DEFAULT_ISSUER_LISTEN.parse()?,
    };
    if !issuer_listen.ip().is_loopback() {
        tracing::warn!(%issuer_listen, "the dev issuer mints tokens for anyone who can reach it: --issuer-listen is not a loopback address");
    }
    if matches!(args.listen, ListenAddr::Tcp(addr) if !addr.ip().is_loopback()) {
        tracing::warn!(listen = %args.listen, "dev mode trusts tokens the dev issuer mints for anyone: --listen is not a loopback address");
    }
    raise_open_file_limit();
    let issuer = DevIssuer::start_with(issuer_listen, saved_key)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot start the dev issuer on {issuer_listen}: {e} (another `dev` running? --issuer-listen 127.0.0.1:0 takes any free port)"
            )
        })?;
    if let Some(state) = &state {
        state.save(issuer.signing_key(), issuer.addr())?;
    }
    // A file adds its settings (gateway routes, limits, more pools); the
    // flags' addresses and the dev pool go on top.
    let mut config = Config::read(args.config.as_deref())?;
    config.listen = args.listen;
    config.metrics.enabled = true;
    config.metrics.listen = args.metrics_listen;
    issuer.trust_in(&mut config);
    let app = App::new(config)?;
    let listeners = app.bind().await?;
    let grpc_addr = listeners.grpc.local_addr();
    let gateway_url = listeners
        .gateway
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|addr| format!("http://{addr}"));
    let metrics_addr = listeners
        .metrics
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map_or_else(String::new, |a| a.to_string());
    let mut ready = app.keys.subscribe_ready();
    let serving = tokio::spawn(app.serve(listeners, shutdown_signal()));
    tokio::time::timeout(Duration::from_secs(10), ready.wait_for(|r| *r))
        .await
        .map_err(|_| {
            anyhow::anyhow!("the service did not load the dev issuer's keys within 10 s")
        })??;

    let running = Running {
        tokens: issuer.mint(&MintRequest::default()),
        grpc_addr,
        metrics_addr,
        gateway_url,
        issuer,
    };
    match (args.json_output, args.print_token) {
        (true, _) => say!("{}", json_line(&running)),
        (false, Some(TokenKind::Id)) => say!("{}", running.tokens.id_token),
        (false, Some(TokenKind::Access)) => say!("{}", running.tokens.access_token),
        (false, None) => say!("{}", banner(&running, args.state_dir.is_some())),
    }
    serving.await??;
    Ok(())
}

fn json_line(running: &Running) -> serde_json::Value {
    let (grpc_addr, metrics_addr, issuer) =
        (&running.grpc_addr, &running.metrics_addr, &running.issuer);
    let tokens = &running.tokens;
    json!({
        "grpc_addr": grpc_addr,
        "grpc_url": format!("http://{grpc_addr}"),
        "issuer": issuer.issuer(),
        "client_id": DEV_CLIENT_ID,
        "mint_url": format!("http://{}/dev/tokens", issuer.addr()),
        "metrics_url": format!("http://{metrics_addr}/metrics"),
        "gateway_url": running.gateway_url,
        "id_token": tokens.id_token,
        "access_token": tokens.access_token,
    })
}

fn banner(running: &Running, kept: bool) -> String {
    let (grpc_addr, metrics_addr, issuer) =
        (&running.grpc_addr, &running.metrics_addr, &running.issuer);
    let tokens = &running.tokens;
    let me = command_name();
    let issuer_addr = issuer.addr();
    let gateway = running.gateway_url.as_ref().map_or_else(String::new, |url| {
        format!("\n  forward-auth  {url}/auth  (nginx auth_request, Traefik, Caddy; ext_authz is on the gRPC port)")
    });
    let restart = if kept {
        "kept in --state-dir: tokens minted now stay valid after a restart"
    } else {
        "new on every start; --state-dir DIR keeps it, so tokens survive a restart"
    };
    format!(
        "token-validator dev: a local user pool, no AWS account needed\n\
         \n  gRPC service  {grpc_addr}  (tokenvalidator.v1.TokenValidator, health, reflection)\
         \n  issuer        {issuer_url}  (port fixed, default {DEFAULT_ISSUER_LISTEN}; --issuer-listen to change)\
         \n  signing key   {restart}\
         \n  client id     {DEV_CLIENT_ID}\
         \n  metrics       http://{metrics_addr}/metrics  (/healthz, /readyz){gateway}\
         \n  user          dev-user (groups admin, users; email dev-user@example.com)\
         \n\nID token:\n{id}\n\nAccess token:\n{access}\n\
         \nTry, in another terminal:\
         \n  {me} validate --addr {grpc_addr} {id}\
         \n  {me} userinfo --addr {grpc_addr} {access}\
         \n  grpcurl -plaintext -d '{{\"token\":\"<token>\"}}' {grpc_addr} tokenvalidator.v1.TokenValidator/ValidateToken\
         \nMint more tokens (body: username, groups, scopes, expires_in, email, preferred_username, attributes):\
         \n  curl -s -X POST http://{issuer_addr}/dev/tokens -H 'content-type: application/json' -d '{{\"username\":\"bob\",\"groups\":[\"users\"],\"expires_in\":600}}'\
         \nRevoke an access token (GetUserInfo then answers REASON_REVOKED, once a cached profile is 60 s old):\
         \n  curl -s -X POST http://{issuer_addr}/dev/revoke -H 'content-type: application/json' -d '{{\"access_token\":\"<access token>\"}}'\
         \n\nCtrl-C stops.",
        issuer_url = issuer.issuer(),
        id = tokens.id_token,
        access = tokens.access_token,
    )
}

/// How to run this binary again from a shell: `token-validator` when that
/// name on PATH is this very file, else the binary's full path (e.g. under
/// `target/` after `cargo run`), so the banner's commands run as printed.
fn command_name() -> String {
    let Ok(me) = std::env::current_exe().and_then(|p| p.canonicalize()) else {
        return "token-validator".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            dir.join("token-validator")
                .canonicalize()
                .is_ok_and(|found| found == me)
        })
    });
    if on_path {
        "token-validator".into()
    } else {
        let shown = me.display().to_string();
        if shown.contains(char::is_whitespace) {
            format!("'{shown}'")
        } else {
            shown
        }
    }
}
