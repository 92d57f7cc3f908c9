//! Micro-benchmarks of the hot path, in-process (no gRPC):
//! a full RS256 check (verified-token cache off), a cache hit, the cheap
//! rejections, JWKS parsing and key-set replacement, and claims → profile.
//!
//! `cargo bench --bench validation` (criterion; medians in target/criterion).

use std::{hint::black_box, sync::Arc};

use criterion::{Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use token_validator::{
    App,
    dev::{DevIssuer, MintRequest, SigningKey},
    jwks::KeySet,
    userinfo::profile_from_claims,
    validate::Policy,
};

struct Setup {
    _runtime: tokio::runtime::Runtime,
    cached: App,
    uncached: App,
    issuer: DevIssuer,
}

fn setup() -> Setup {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (issuer, cached, uncached) = runtime.block_on(async {
        let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let app = |cache: bool| {
            let mut config = issuer.service_config("127.0.0.1:0".parse().unwrap());
            config.metrics.enabled = false;
            config.token_cache.enabled = cache;
            App::new(config).unwrap()
        };
        let (cached, uncached) = (app(true), app(false));
        cached.keys.fetch_and_install(0).await.unwrap();
        uncached.keys.fetch_and_install(0).await.unwrap();
        (issuer, cached, uncached)
    });
    Setup {
        _runtime: runtime,
        cached,
        uncached,
        issuer,
    }
}

fn validation(c: &mut Criterion) {
    let s = setup();
    let policy = Policy::default();
    let token = s.issuer.mint(&MintRequest::default()).id_token;
    let validate = |app: &App, token: &str| {
        let outcome = block_on(app.validator.validate(token, &policy));
        black_box(outcome.result.is_ok())
    };
    assert!(validate(&s.uncached, &token));

    let mut group = c.benchmark_group("validate");
    group.bench_function("cache_miss_full_rs256", |b| {
        b.iter(|| validate(&s.uncached, &token))
    });
    group.bench_function("cache_hit", |b| b.iter(|| validate(&s.cached, &token)));
    group.finish();

    let forged = {
        let other = SigningKey::generate(s.issuer.signing_key().kid()).unwrap();
        let (_, payload, _) = split3(&token);
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap();
        other.sign_claims(&claims)
    };
    let unknown_issuer = {
        let mut claims = serde_json::json!({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Nope", "exp": 4_000_000_000u64, "token_use": "id"});
        claims["sub"] = "x".into();
        s.issuer.signing_key().sign_claims(&claims)
    };
    let mut group = c.benchmark_group("reject");
    group.bench_function("bad_signature", |b| {
        b.iter(|| !validate(&s.uncached, &forged))
    });
    group.bench_function("unknown_issuer", |b| {
        b.iter(|| !validate(&s.uncached, &unknown_issuer))
    });
    group.bench_function("malformed", |b| {
        b.iter(|| !validate(&s.uncached, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"))
    });
    group.finish();

    let keys: Vec<SigningKey> = (0..2)
        .map(|i| SigningKey::generate(format!("k{i}")).unwrap())
        .collect();
    let jwks = serde_json::json!({"keys": keys.iter().map(SigningKey::jwk).collect::<Vec<_>>()})
        .to_string();
    let mut group = c.benchmark_group("jwks");
    group.bench_function("parse_two_keys", |b| {
        b.iter(|| black_box(KeySet::from_json(jwks.as_bytes()).unwrap()))
    });
    group.bench_function("parse_and_replace_key_set", |b| {
        b.iter(|| {
            s.uncached
                .keys
                .install(0, KeySet::from_json(jwks.as_bytes()).unwrap())
        })
    });
    group.finish();

    let verified: Arc<_> = block_on(s.cached.validator.validate(&token, &policy))
        .result
        .unwrap();
    c.bench_function("userinfo/profile_from_claims", |b| {
        b.iter(|| black_box(profile_from_claims(&verified)))
    });
}

fn split3(token: &str) -> (&str, &str, &str) {
    let mut parts = token.split('.');
    (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    )
}

criterion_group!(benches, validation);
criterion_main!(benches);
