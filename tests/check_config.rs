//! `token-validator check-config`, the real binary: one line per problem,
//! printed once, naming the key as written in YAML; `--print` writes a config
//! that loads again to the same values; `serve` fails the same way before
//! binding anything. And the published schemas are the Rust types' own.

mod common;

use std::{
    path::Path,
    process::{Command, Output},
};

use common::process::{BIN, free_port};
use serde_json::Value;

const ONE_POOL: &str = "pools:\n  - name: main\n    region: us-east-1\n    user_pool_id: us-east-1_AbCdEf123\n    client_ids: [abc]\n";

/// Runs the binary with `args`, a config file holding `yaml`, and only `env`
/// (the test process's own TOKEN_VALIDATOR__* variables must not leak in).
fn run(args: &[&str], yaml: &str, env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut command = Command::new(BIN);
    command.args(args).arg("--config").arg(&path).env_clear();
    command.env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(String::from)
        .collect()
}

/// Asserts exit 1 and exactly `expected` as the only line on stderr.
fn assert_refused(output: &Output, expected: &str) {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(stderr_lines(output), vec![expected.to_string()]);
}

#[test]
fn a_typo_is_one_line_naming_the_key_with_a_suggestion() {
    let yaml = ONE_POOL.replace("client_ids", "client_id");
    assert_refused(
        &run(&["check-config"], &yaml, &[]),
        r#"config: pools[0]: unknown key "client_id" (did you mean "client_ids"?)"#,
    );
    assert_refused(
        &run(
            &["check-config"],
            &format!("{ONE_POOL}jwks:\n  refresh_intervall_secs: 60\n"),
            &[],
        ),
        r#"config: jwks: unknown key "refresh_intervall_secs" (did you mean "refresh_interval_secs"?)"#,
    );
    assert_refused(
        &run(
            &["check-config"],
            &ONE_POOL.replace("abc]", "abc]\n    token_use: [acess]"),
            &[],
        ),
        r#"config: pools[0].token_use[0]: unknown value "acess" (did you mean "access"?)"#,
    );
}

#[test]
fn values_that_used_to_panic_later_are_refused_at_load() {
    for (key, value) in [
        ("jwks.refresh_interval_secs", "40000000000"),
        (
            "server.http2_keepalive_interval_secs",
            "18446744073709551615",
        ),
        (
            "server.http2_keepalive_timeout_secs",
            "18446744073709551615",
        ),
    ] {
        let (section, name) = key.split_once('.').unwrap();
        let output = run(
            &["check-config"],
            &format!("{ONE_POOL}{section}:\n  {name}: {value}\n"),
            &[],
        );
        assert_eq!(output.status.code(), Some(1), "{key}");
        let lines = stderr_lines(&output);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(&format!("config: {key}: {value} is out of range")),
            "{lines:?}"
        );
    }
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let output = run(
        &["check-config"],
        ONE_POOL,
        &[("TOKEN_VALIDATOR__JWKS__FETCH_TIMEOUT_MS", "soon")],
    );
    assert_refused(
        &output,
        r#"config: jwks.fetch_timeout_ms (from TOKEN_VALIDATOR__JWKS__FETCH_TIMEOUT_MS): expected a whole number >= 0, found "soon""#,
    );
    let output = run(
        &["check-config"],
        ONE_POOL,
        &[("TOKEN_VALIDATOR__VALIDATION__ALGORITHMS", "[HS256]")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_lines(&output)[0].contains("\"HS256\" is not allowed"),
        "{output:?}"
    );
}

#[test]
fn print_writes_the_effective_config_which_loads_to_the_same_values() {
    let output = run(
        &["check-config", "--print"],
        ONE_POOL,
        &[("TOKEN_VALIDATOR__JWKS__REFRESH_INTERVAL_SECS", "120")],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(stderr_lines(&output), vec!["config: ok (1 pool: main)"]);
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.contains("refresh_interval_secs: 120"), "{printed}");
    assert!(printed.contains("listen: 0.0.0.0:50051"), "{printed}");
    assert!(!printed.contains("Some("), "{printed}");
    // The old key governs GetUser too unless the new one is set: the alias, resolved.
    assert!(printed.contains("connect_timeout_ms: 2000"), "{printed}");
    let again = run(&["check-config", "--print"], &printed, &[]);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert_eq!(String::from_utf8(again.stdout).unwrap(), printed);
}

#[test]
fn the_old_jwks_keys_still_govern_get_user_unless_the_userinfo_ones_are_set() {
    let insecure =
        format!("{ONE_POOL}userinfo:\n  cognito_endpoint: http://cognito.internal.example/\n");
    let output = run(&["check-config"], &insecure, &[]);
    assert_refused(
        &output,
        "config: userinfo.cognito_endpoint: http://cognito.internal.example/ uses http on a \
         non-loopback host; use https or set userinfo.allow_insecure_http: true",
    );
    let alias = format!("{insecure}jwks:\n  allow_insecure_http: true\n");
    assert_eq!(run(&["check-config"], &alias, &[]).status.code(), Some(0));
    let own_key = format!("{insecure}  allow_insecure_http: true\n");
    assert_eq!(run(&["check-config"], &own_key, &[]).status.code(), Some(0));
    // The new key wins over its alias.
    let both = format!("{own_key}jwks:\n  connect_timeout_ms: 700\n");
    let with_own_timeout = both.replace(
        "  allow_insecure_http: true\njwks",
        "  allow_insecure_http: true\n  connect_timeout_ms: 900\njwks",
    );
    let printed = run(&["check-config", "--print"], &with_own_timeout, &[]);
    let printed = String::from_utf8(printed.stdout).unwrap();
    assert!(printed.contains("  connect_timeout_ms: 900\n"), "{printed}");
    assert!(printed.contains("  connect_timeout_ms: 700\n"), "{printed}");
}

#[test]
fn serve_refuses_a_bad_config_before_binding_with_the_same_one_line() {
    let port = free_port();
    let yaml = format!(
        "listen: 127.0.0.1:{port}\nmetrics:\n  enabled: false\n{}",
        ONE_POOL.replace("client_ids", "client_id")
    );
    let output = run(&["serve"], &yaml, &[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(
        stderr_lines(&output),
        vec![r#"config: pools[0]: unknown key "client_id" (did you mean "client_ids"?)"#]
    );
    // Nothing was bound: the port is still free.
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_published_schemas_are_generated_from_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let stale = "is stale: run `cargo build && python3 deploy/sync_schema.py`";
    assert!(
        read_json(&root.join("config.schema.json")) == token_validator::config::json_schema(),
        "config.schema.json {stale}"
    );
    let values = read_json(&root.join("helm/token-validator/values.schema.json"));
    assert!(
        values["properties"]["config"] == token_validator::config::chart_schema(),
        "helm/token-validator/values.schema.json properties.config {stale}"
    );
}
