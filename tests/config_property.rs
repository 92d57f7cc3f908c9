//! Property: for random values of every numeric config key, loading either
//! fails with one line naming the key, or the service starts and answers a
//! health check, with no panic anywhere (a value that passed the types used
//! to panic later: inside moka at start, or on every connection).
//!
//! The keys and their ranges are read from the generated schema, so a key
//! added to the types is covered without editing this test. The `tls`
//! section is left out of the starts (it needs certificate files and a TLS
//! client); its one numeric key is in ranges.rs's own unit test.

mod common;

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use common::*;
use proptest::{
    prelude::*,
    test_runner::{TestCaseError, TestRunner},
};
use serde_json::Value;
use token_validator::{App, Config, dev::SigningKey, grpc::client as grpc_client};

/// Set by the panic hook: a panic on any thread (a connection or refresh task
/// included, which tokio would otherwise swallow) fails the property.
static PANICKED: AtomicBool = AtomicBool::new(false);

/// (section, key, min, max) of every integer key with a range in the schema.
fn numeric_keys() -> Vec<(String, String, u64, u64)> {
    let schema = token_validator::config::json_schema();
    let mut keys = Vec::new();
    for (section, section_schema) in schema["properties"].as_object().unwrap() {
        if section == "tls" {
            continue;
        }
        let Some(properties) = section_schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (name, property) in properties {
            if let (Some(min), Some(max)) = (
                property.get("minimum").and_then(Value::as_u64),
                property.get("maximum").and_then(Value::as_u64),
            ) {
                keys.push((section.clone(), name.clone(), min, max));
            }
        }
    }
    keys
}

/// A config file for the test pool at `jwks_url` with `values` set.
fn yaml(jwks_url: &str, values: &[(String, String, u128)]) -> String {
    let mut text = format!(
        "listen: 127.0.0.1:0\n\
         pools:\n  - name: main\n    region: {REGION}\n    user_pool_id: {POOL_ID}\n    \
         client_ids: [{CLIENT_ID}]\n    jwks_url: {jwks_url}\n"
    );
    let mut sections: Vec<&str> = values.iter().map(|(s, _, _)| s.as_str()).collect();
    sections.dedup();
    for section in sections {
        text.push_str(&format!("{section}:\n"));
        if section == "metrics" {
            text.push_str("  listen: 127.0.0.1:0\n");
        }
        if section == "userinfo" {
            text.push_str("  cognito_lookup: false\n");
        }
        for (_, name, value) in values.iter().filter(|(s, _, _)| s == section) {
            text.push_str(&format!("  {name}: {value}\n"));
        }
    }
    text
}

fn load(text: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, text).unwrap();
    Config::load_from(Some(&path), |_| None).map_err(|e| e.to_string())
}

/// Swaps the values of the `jwks` keys `low` and `high` if `low`'s is larger.
fn in_order(values: &mut [(String, String, u128)], low: &str, high: &str) {
    let at = |name: &str| values.iter().position(|(s, n, _)| s == "jwks" && n == name);
    if let (Some(l), Some(h)) = (at(low), at(high))
        && values[l].2 > values[h].2
    {
        let (a, b) = (values[l].2, values[h].2);
        values[l].2 = b;
        values[h].2 = a;
    }
}

/// An in-range value: an end of the range or anything between.
fn in_range(min: u64, max: u64) -> BoxedStrategy<u128> {
    prop_oneof![Just(min), Just(max), min..=max]
        .prop_map(u128::from)
        .boxed()
}

/// An out-of-range value: just past either end, or far past the top (past u64 too).
fn out_of_range(min: u64, max: u64) -> BoxedStrategy<u128> {
    let mut options = vec![
        Just(u128::from(max) + 1).boxed(),
        (u128::from(max) + 1..=u128::from(u64::MAX) + 1).boxed(),
    ];
    if min > 0 {
        options.push((0..u128::from(min)).boxed());
    }
    proptest::strategy::Union::new(options).boxed()
}

#[test]
fn random_numeric_values_load_with_a_named_error_or_start_and_answer_health() {
    std::panic::set_hook(Box::new(|info| {
        PANICKED.store(true, Ordering::SeqCst);
        eprintln!("panic: {info}");
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let key = SigningKey::generate("k").unwrap();
    let jwks = runtime.block_on(JwksServer::start(&[&key]));
    let keys = numeric_keys();
    assert!(keys.len() >= 30, "{keys:?}");

    // Every key in range: the service must start and answer.
    let all_in_range: Vec<BoxedStrategy<u128>> = keys
        .iter()
        .map(|(_, _, min, max)| in_range(*min, *max))
        .collect();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let started = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&all_in_range, |values| {
            let mut values: Vec<_> = keys
                .iter()
                .zip(values)
                .map(|((section, name, _, _), value)| (section.clone(), name.clone(), value))
                .collect();
            // The one rule across keys: the back-off's bounds in order (its
            // refusal is a test of its own in config::tests).
            in_order(&mut values, "retry_backoff_min_ms", "retry_backoff_max_ms");
            let text = yaml(&jwks.url(), &values);
            let config = load(&text).map_err(|error| {
                TestCaseError::fail(format!("in range, yet refused: {error}\n{text}"))
            })?;
            let answered = runtime.block_on(async {
                let service = App::spawn(config).await.map_err(|e| e.to_string())?;
                let channel = grpc_client::connect(&service.url(), Duration::from_secs(5))
                    .await
                    .map_err(|e| e.to_string())?;
                let status =
                    tokio::time::timeout(Duration::from_secs(5), grpc_client::health(channel, ""))
                        .await
                        .map_err(|_| "no health answer within 5 s".to_string())?
                        .map_err(|e| e.to_string())?;
                drop(service);
                Ok::<i32, String>(status)
            });
            // SERVING (1) or NOT_SERVING (2, keys not fetched yet or a 1 ms fetch timeout).
            prop_assert!(matches!(answered, Ok(1 | 2)), "{answered:?}\n{text}");
            prop_assert!(!PANICKED.load(Ordering::SeqCst), "a panic\n{text}");
            started.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    let started = started.into_inner();
    assert_eq!(started, 24, "every in-range case must start the service");

    // One key out of range, the rest in range: loading names exactly that key.
    let one_out = (0..keys.len()).prop_flat_map(|bad| {
        let strategies: Vec<BoxedStrategy<u128>> = keys
            .iter()
            .enumerate()
            .map(|(i, (_, _, min, max))| match i == bad {
                true => out_of_range(*min, *max),
                false => in_range(*min, *max),
            })
            .collect();
        (Just(bad), strategies)
    });
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&one_out, |(bad, values)| {
            let values: Vec<_> = keys
                .iter()
                .zip(values)
                .map(|((section, name, _, _), value)| (section.clone(), name.clone(), value))
                .collect();
            let text = yaml(&jwks.url(), &values);
            let (section, name, value) = &values[bad];
            match load(&text) {
                Ok(_) => prop_assert!(false, "{section}.{name} = {value} was accepted"),
                Err(error) => {
                    let lines = error.lines().count();
                    prop_assert_eq!(lines, 1, "{}", error);
                    prop_assert!(
                        error.starts_with(&format!("config: {section}.{name}: ")),
                        "{error}\n{text}"
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(!PANICKED.load(Ordering::SeqCst));
}
