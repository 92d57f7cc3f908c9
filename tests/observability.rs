//! Observability end to end: Prometheus scrapes over HTTP after real traffic,
//! OTLP export to a real OTLP/gRPC receiver (spans continue the caller's
//! trace, no token anywhere), and the rate-limited audit log of a real process.

mod common;

use std::sync::{Arc, Mutex};

use common::{process::*, *};
use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::any_value::Value as AnyValue,
};
use token_validator::{dev::SigningKey, grpc::proto::Reason};

/// Sum of the samples of `name` whose labels include every `labels` pair.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    scrape_metrics(addr).await
}

#[tokio::test]
async fn scraped_metrics_move_by_the_expected_amounts() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let mut config = config_for(&jwks.url());
    config.jwks.refresh_interval_secs = 1;
    let service = start_service(config).await;
    let metrics = service.metrics_addr.expect("metrics port on");
    let mut client = client(&service).await;

    let http = reqwest::Client::new();
    let healthz = http
        .get(format!("http://{metrics}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
    let readyz = http
        .get(format!("http://{metrics}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 200);

    let before = scrape(metrics).await;
    let valid = key.sign_claims(&id_claims());
    assert!(validate(&mut client, request(valid.clone())).await.valid); // miss
    assert!(validate(&mut client, request(valid.clone())).await.valid); // hit
    assert!(
        validate(&mut client, request(key.sign_claims(&access_claims())))
            .await
            .valid
    );
    let mut expired = id_claims();
    expired["exp"] = (now() - 5).into();
    let answer = validate(&mut client, request(key.sign_claims(&expired))).await;
    assert_eq!(reason_of(&answer), Reason::Expired);
    let answer = validate(&mut client, request("garbage")).await;
    assert_eq!(reason_of(&answer), Reason::Malformed);
    assert!(client.validate_token(request("")).await.is_err());
    let after = scrape(metrics).await;

    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let validations = "token_validator_validations_total";
    assert_eq!(
        delta(
            validations,
            &[("result", "valid"), ("token_use", "id"), ("pool", "main")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            validations,
            &[
                ("result", "valid"),
                ("token_use", "access"),
                ("pool", "main")
            ]
        ),
        1.0
    );
    assert_eq!(
        delta(
            validations,
            &[
                ("result", "invalid"),
                ("reason", "expired"),
                ("pool", "main"),
                ("token_use", "id")
            ]
        ),
        1.0
    );
    assert_eq!(
        delta(
            validations,
            &[
                ("result", "invalid"),
                ("reason", "malformed"),
                ("pool", "unknown")
            ]
        ),
        1.0
    );
    assert_eq!(
        delta(
            validations,
            &[("result", "error"), ("reason", "empty_token")]
        ),
        1.0
    );
    assert_eq!(delta("token_validator_token_cache_hits_total", &[]), 1.0);
    assert_eq!(delta("token_validator_token_cache_misses_total", &[]), 4.0);
    let duration = "token_validator_validation_duration_seconds_count";
    assert_eq!(
        delta(duration, &[("rpc", "ValidateToken"), ("cache", "hit")]),
        1.0
    );
    assert_eq!(
        delta(duration, &[("rpc", "ValidateToken"), ("cache", "miss")]),
        5.0
    );
    let rpc = "rpc_server_duration_seconds_count";
    assert_eq!(
        delta(
            rpc,
            &[
                ("rpc_method", "ValidateToken"),
                ("rpc_grpc_status_code", "0")
            ]
        ),
        5.0
    );
    assert_eq!(
        delta(
            rpc,
            &[
                ("rpc_method", "ValidateToken"),
                ("rpc_grpc_status_code", "3")
            ]
        ),
        1.0
    );
    // Tens of microseconds are readable: the finest bucket is 10 µs.
    assert!(
        after.lines().any(
            |l| l.starts_with("token_validator_validation_duration_seconds_bucket{")
                && l.contains("le=\"0.00001\"")
        ),
        "no 10 µs bucket"
    );
    assert!(sample(&after, "token_validator_jwks_keys", &[("pool", "main")]) == 1.0);
    assert!(sample(&after, "token_validator_token_cache_entries", &[]) >= 1.0);
    assert!(
        sample(
            &after,
            "token_validator_jwks_key_age_seconds",
            &[("pool", "main")]
        ) < 60.0
    );

    // The JWKS endpoint fails: the failure is counted by pool and result.
    jwks.set_mode(Mode::Status(503));
    let failed = eventually(|| async {
        sample(
            &scrape(metrics).await,
            "token_validator_jwks_fetches_total",
            &[("pool", "main"), ("result", "http_error")],
        ) >= 1.0
    })
    .await;
    assert!(failed, "no failed JWKS fetch counted");
    assert!(!after.contains(&valid), "a token leaked into the metrics");
}

/// An OTLP/gRPC receiver keeping what it is sent.
#[derive(Clone, Default)]
struct Receiver {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.traces.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metrics.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn attribute(
    attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::BoolValue(b) => Some(b.to_string()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            other => Some(format!("{other:?}")),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_reach_an_otlp_receiver_without_the_token() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .add_service(MetricsServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let endpoint = format!("http://{otlp}");
    let served = serve(
        &jwks,
        "",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "tv-otlp-test"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=ci"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
            ("RUST_LOG", "info,token_validator=debug"),
        ],
    )
    .await;
    let (url, log) = (served.url.clone(), served.log.clone());

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let token = key.sign_claims(&id_claims());
    let mut client =
        token_validator::grpc::proto::token_validator_client::TokenValidatorClient::connect(url)
            .await
            .unwrap();
    let mut traced = tonic::Request::new(request(token.clone()));
    traced.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent_id}-01").parse().unwrap(),
    );
    assert!(
        client
            .validate_token(traced)
            .await
            .unwrap()
            .into_inner()
            .valid
    );
    // Same kid, another key: a well-formed token whose signature is wrong.
    let bad = SigningKey::generate("k").unwrap().sign_claims(&id_claims());
    let answer = client
        .validate_token(request(bad.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.valid);

    // An unknown kid: the refetch it triggers is traced inside the caller's trace.
    let refetch_trace = "0af7651916cd43dd8448eb211c80319c";
    let mut unknown = tonic::Request::new(request(
        SigningKey::generate("rotated-in")
            .unwrap()
            .sign_claims(&id_claims()),
    ));
    unknown.metadata_mut().insert(
        "traceparent",
        format!("00-{refetch_trace}-b7ad6b7169203331-01")
            .parse()
            .unwrap(),
    );
    let answer = client.validate_token(unknown).await.unwrap().into_inner();
    assert_eq!(reason_of(&answer), Reason::UnknownKey);

    let wanted = hex_trace(trace_id);
    let found = eventually(|| async {
        receiver
            .traces
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .any(|s| s.trace_id == wanted && s.name.ends_with("/ValidateToken"))
    })
    .await;
    assert!(
        found,
        "no ValidateToken span with the caller's trace id arrived"
    );
    let metrics_arrived = eventually(|| async {
        let names: Vec<String> = receiver
            .metrics
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| m.name.clone())
            .collect();
        names.iter().any(|n| n == "token_validator.validations")
            && names.iter().any(|n| n == "rpc.server.duration")
    })
    .await;
    assert!(metrics_arrived, "metrics did not arrive over OTLP");
    // The batch processor exports every span checked below: wait for them all
    // (the child spans, the refetch, the rejected call), not for a time.
    let refetch_id = hex_trace(refetch_trace);
    let all_arrived = eventually(|| async {
        let traces = receiver.traces.lock().unwrap().clone();
        let spans: Vec<_> = traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| {
                (
                    s.trace_id.clone(),
                    s.name.clone(),
                    attribute(&s.attributes, "reason"),
                )
            })
            .collect();
        let has = |trace: &[u8], name: &str| spans.iter().any(|(t, n, _)| t == trace && n == name);
        has(&wanted, "jwks.key_lookup")
            && has(&wanted, "jwt.verify_signature")
            && has(&refetch_id, "jwks.fetch")
            && spans
                .iter()
                .any(|(_, n, reason)| n.ends_with("/ValidateToken") && reason.is_some())
    })
    .await;
    assert!(all_arrived, "the spans did not all arrive over OTLP");

    let traces = receiver.traces.lock().unwrap().clone();
    let resource = traces[0].resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attribute(&resource.attributes, "service.name").as_deref(),
        Some("tv-otlp-test")
    );
    assert_eq!(
        attribute(&resource.attributes, "deployment.environment").as_deref(),
        Some("ci")
    );
    let spans: Vec<_> = traces
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| s.spans.clone())
        .collect();
    let rpc = spans
        .iter()
        .find(|s| {
            s.trace_id == wanted && s.name == "tokenvalidator.v1.TokenValidator/ValidateToken"
        })
        .expect("the RPC span");
    assert_eq!(
        rpc.parent_span_id,
        hex_trace(parent_id),
        "the span continues the caller's span"
    );
    assert_eq!(rpc.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(
        attribute(&rpc.attributes, "rpc.method").as_deref(),
        Some("ValidateToken")
    );
    assert_eq!(attribute(&rpc.attributes, "pool").as_deref(), Some("main"));
    assert_eq!(
        attribute(&rpc.attributes, "token_use").as_deref(),
        Some("id")
    );
    assert_eq!(
        attribute(&rpc.attributes, "cache_hit").as_deref(),
        Some("false")
    );
    assert_eq!(
        attribute(&rpc.attributes, "enduser.id").as_deref(),
        Some("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
    );
    let hash =
        token_validator::validate::hash_prefix(&token_validator::validate::token_hash(&token));
    assert_eq!(attribute(&rpc.attributes, "token.hash"), Some(hash));
    for child in ["jwks.key_lookup", "jwt.verify_signature"] {
        assert!(
            spans.iter().any(|s| s.trace_id == wanted
                && s.name == child
                && s.parent_span_id == rpc.span_id),
            "child span {child} missing"
        );
    }
    assert!(
        spans
            .iter()
            .any(|s| s.trace_id == hex_trace(refetch_trace) && s.name == "jwks.fetch"),
        "the unknown-kid refetch is not in the caller's trace"
    );
    let rejected = spans
        .iter()
        .find(|s| {
            s.name.ends_with("/ValidateToken") && attribute(&s.attributes, "reason").is_some()
        })
        .expect("the rejected call's span");
    assert_eq!(
        attribute(&rejected.attributes, "reason").as_deref(),
        Some("bad_signature")
    );
    assert_eq!(
        attribute(&rejected.attributes, "enduser.id"),
        None,
        "no sub for an unverified token"
    );

    // Neither token appears in any exported attribute or in the logs.
    let exported = format!("{traces:?}{:?}", receiver.metrics.lock().unwrap());
    let logs = std::fs::read_to_string(&log).unwrap();
    for secret in [&token, &bad] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!exported.contains(signature), "a token was exported");
        assert!(!logs.contains(signature), "a token was logged");
    }
    assert!(logs.contains("token_rejected"), "the audit event is logged");
}

fn hex_trace(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_rejections_and_is_rate_limited() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let served = serve(
        &jwks,
        "audit:\n  max_events_per_sec: 5\n",
        &[("RUST_LOG", "info")],
    )
    .await;
    let (url, log, metrics_port) = (served.url.clone(), served.log.clone(), served.metrics_port);
    let mut client =
        token_validator::grpc::proto::token_validator_client::TokenValidatorClient::connect(url)
            .await
            .unwrap();

    // A signature-good rejection names the subject; a forged one does not.
    let mut expired = id_claims();
    expired["exp"] = (now() - 5).into();
    let expired = key.sign_claims(&expired);
    assert_eq!(
        reason_of(&validate(&mut client, request(expired.clone())).await),
        Reason::Expired
    );
    let forged = SigningKey::generate("k").unwrap().sign_claims(&id_claims());
    assert_eq!(
        reason_of(&validate(&mut client, request(forged)).await),
        Reason::BadSignature
    );

    // A flood: 200 rejections; only the burst plus the refill (5/s) is written.
    let flood = std::time::Instant::now();
    for i in 0..200 {
        let token = format!("not-a-token-{i}");
        validate(&mut client, request(token)).await;
    }
    let events = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["fields"]["event"] == "token_rejected")
            .collect()
    };
    let metrics_addr: std::net::SocketAddr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    let suppressed = || async {
        sample(
            &scrape_metrics(metrics_addr).await,
            "token_validator_audit_suppressed_total",
            &[],
        ) as usize
    };
    // After the flood, one rejection at a time, each awaited until the service
    // has either written it or counted it suppressed, until one is written:
    // the bucket has refilled, and that event reports the suppressed ones.
    // Causal, not timed: no sleep for the refill.
    let mut sent = 202;
    assert!(
        eventually(|| async { events().len() + suppressed().await == sent }).await,
        "the flood's rejections were neither written nor counted"
    );
    let written_before_retries = events().len();
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        validate(&mut client, request(format!("after-the-flood-{sent}"))).await;
        sent += 1;
        assert!(
            eventually(|| async { events().len() + suppressed().await == sent }).await,
            "a rejection was neither written nor counted"
        );
        if events().len() > written_before_retries || std::time::Instant::now() > deadline {
            break;
        }
    }
    let flood_secs = flood.elapsed().as_secs_f64();
    assert!(
        events()
            .last()
            .is_some_and(|e| e["fields"]["suppressed_before"].as_u64() > Some(0)),
        "the next event after the flood reports what was suppressed"
    );
    let events = events();
    let first = &events[0];
    assert_eq!(first["target"], "token_validator::audit");
    assert_eq!(first["fields"]["reason"], "expired");
    assert_eq!(first["fields"]["pool"], "main");
    assert_eq!(first["fields"]["kid"], "k");
    assert_eq!(
        first["fields"]["sub"],
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    );
    assert!(
        first["fields"]["peer"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(first["fields"]["token"].as_str().unwrap().len(), 12);
    assert_eq!(events[1]["fields"]["reason"], "bad_signature");
    assert!(
        events[1]["fields"].get("sub").is_none(),
        "no sub before the signature is good"
    );
    // `sent` rejections in all: at most the burst (5), the refill since the
    // flood began (5/s) and the two before it are written.
    let allowed = 5 + (5.0 * flood_secs).ceil() as usize + 2;
    assert!(
        events.len() <= allowed,
        "{} audit events, at most {allowed} allowed",
        events.len()
    );
    let reported: u64 = events
        .iter()
        .map(|e| e["fields"]["suppressed_before"].as_u64().unwrap())
        .sum();
    assert_eq!(
        reported as usize + events.len(),
        sent,
        "every rejection is written or reported as suppressed"
    );
    assert!(
        !std::fs::read_to_string(&log).unwrap().contains(&expired),
        "a token was logged"
    );

    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = sample(&text, "token_validator_audit_suppressed_total", &[]);
    assert_eq!(
        counted as usize,
        sent - events.len(),
        "every suppressed event is counted"
    );
}

#[tokio::test]
async fn every_counter_exists_at_zero_from_start_for_every_pool() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let service = start_service(config_for(&jwks.url())).await;
    let text = scrape(service.metrics_addr.unwrap()).await;
    let present = |series: &str| {
        text.lines()
            .any(|l| l.starts_with(series) && l.ends_with(" 0"))
    };
    for series in [
        "token_validator_jwks_rotations_total{",
        "token_validator_jwks_unknown_kid_refetches_total{",
        "token_validator_jwks_unknown_kid_suppressed_total{",
        "token_validator_audit_suppressed_total{",
        "token_validator_get_user_lookups_total{",
        "token_validator_accept_errors_total{",
        "token_validator_connections_closed_total{",
        "token_validator_answers_refused_total{",
    ] {
        assert!(present(series), "{series} is not at 0 from start:\n{text}");
    }
    for name in [
        "token_validator_jwks_rotations_total",
        "token_validator_jwks_unknown_kid_refetches_total",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l.contains("pool=\"main\"")),
            "{name} has no series for pool main"
        );
    }
    assert_eq!(
        sample(
            &text,
            "token_validator_jwks_fetches_total",
            &[("result", "timeout")]
        ),
        0.0
    );
}
