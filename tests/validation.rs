//! ValidateToken end to end: real server, real JWKS over HTTP, keys made here.

mod common;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::*;
use serde_json::json;
use token_validator::{
    dev::SigningKey,
    grpc::proto::{self, Reason},
};
use tonic::Code;

struct Fixture {
    key: SigningKey,
    _jwks: JwksServer,
    service: token_validator::RunningService,
}

async fn fixture() -> Fixture {
    let key = SigningKey::generate("key-1").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let service = start_service(config_for(&jwks.url())).await;
    Fixture {
        key,
        _jwks: jwks,
        service,
    }
}

fn hs256(secret: &[u8], header: serde_json::Value, claims: &serde_json::Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

#[tokio::test]
async fn valid_id_and_access_tokens_pass_with_their_claims() {
    let f = fixture().await;
    let mut client = client(&f.service).await;

    let id = validate(&mut client, request(f.key.sign_claims(&id_claims()))).await;
    assert!(id.valid, "{id:?}");
    assert_eq!(reason_of(&id), Reason::Unspecified);
    let claims = id.claims.unwrap();
    assert_eq!(claims.token_use, "id");
    assert_eq!(claims.client_id, CLIENT_ID);
    assert_eq!(claims.username, "alice");
    assert_eq!(claims.issuer, issuer());
    assert_eq!(claims.groups, vec!["admin", "users"]);
    assert_eq!(claims.email, "alice@example.com");
    assert_eq!(claims.origin_jti, "origin-1");
    let json: serde_json::Value = serde_json::from_str(&claims.json).unwrap();
    assert_eq!(json["custom:tenant"], "acme");

    let access = validate(
        &mut client,
        request(format!("Bearer {}", f.key.sign_claims(&access_claims()))),
    )
    .await;
    assert!(access.valid, "{access:?}");
    let claims = access.claims.unwrap();
    assert_eq!(claims.token_use, "access");
    assert_eq!(claims.client_id, CLIENT_ID);
    assert_eq!(claims.username, "alice");
    assert_eq!(claims.scopes, vec!["openid", "email", "api/read"]);
    assert!(claims.expires_at > now());
}

#[tokio::test]
async fn every_reason_is_produced_by_a_token_built_for_it() {
    let f = fixture().await;
    let mut client = client(&f.service).await;
    let key = &f.key;
    let other_key = SigningKey::generate("key-1").unwrap();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = id_claims();
        edit(&mut claims);
        claims
    };
    let good = key.sign_claims(&id_claims());
    let (good_input, _) = good.rsplit_once('.').unwrap();
    let foreign_signature = other_key.sign(good_input.as_bytes());

    let cases: Vec<(Reason, proto::ValidateTokenRequest)> = vec![
        (Reason::Malformed, request("not-a-jwt")),
        (
            Reason::UnsupportedAlgorithm,
            request(key.sign_with_header(&json!({"alg": "RS512", "kid": "key-1"}), &id_claims())),
        ),
        (
            Reason::UnknownIssuer,
            request(key.sign_claims(&with(&|c| {
                c["iss"] = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other".into()
            }))),
        ),
        (
            Reason::UnknownKey,
            request(
                SigningKey::generate("key-unknown")
                    .unwrap()
                    .sign_claims(&id_claims()),
            ),
        ),
        (
            Reason::BadSignature,
            request(format!(
                "{good_input}.{}",
                URL_SAFE_NO_PAD.encode(foreign_signature)
            )),
        ),
        (
            Reason::Expired,
            request(key.sign_claims(&with(&|c| c["exp"] = (now() - 1).into()))),
        ),
        (
            Reason::NotYetValid,
            request(key.sign_claims(&with(&|c| c["nbf"] = (now() + 600).into()))),
        ),
        (
            Reason::NotYetValid,
            request(key.sign_claims(&with(&|c| c["iat"] = (now() + 600).into()))),
        ),
        (
            Reason::WrongClient,
            request(key.sign_claims(&with(&|c| c["aud"] = "someone-else".into()))),
        ),
        (
            Reason::WrongTokenUse,
            request(key.sign_claims(&with(&|c| c["token_use"] = "refresh".into()))),
        ),
        (
            Reason::WrongTokenUse,
            proto::ValidateTokenRequest {
                expected_token_use: proto::TokenUse::Access as i32,
                ..request(good.clone())
            },
        ),
        (
            Reason::MissingScope,
            proto::ValidateTokenRequest {
                required_scopes: vec!["openid".into(), "api/write".into()],
                ..request(key.sign_claims(&access_claims()))
            },
        ),
        (
            Reason::MissingGroup,
            proto::ValidateTokenRequest {
                required_groups: vec!["auditors".into(), "ops".into()],
                ..request(good.clone())
            },
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (expected, request) in cases {
        let answer = validate(&mut client, request).await;
        assert!(!answer.valid, "{expected:?} case validated");
        assert_eq!(reason_of(&answer), expected, "{}", answer.message);
        assert!(answer.claims.is_none());
        assert!(!answer.message.is_empty());
        seen.insert(expected);
    }
    assert_eq!(seen.len(), 11, "every non-default Reason is covered");

    // The policy rules, positively: all scopes present, any one group suffices.
    let ok = validate(
        &mut client,
        proto::ValidateTokenRequest {
            expected_token_use: proto::TokenUse::Access as i32,
            required_scopes: vec!["openid".into(), "api/read".into()],
            required_groups: vec!["nobody".into(), "users".into()],
            ..request(key.sign_claims(&access_claims()))
        },
    )
    .await;
    assert!(ok.valid, "{ok:?}");
}

#[tokio::test]
async fn forged_tokens_are_rejected_with_the_right_reason() {
    let f = fixture().await;
    let mut client = client(&f.service).await;
    let claims = id_claims();

    // alg none, unsigned.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": "key-1"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let answer = validate(&mut client, request(none)).await;
    assert_eq!(reason_of(&answer), Reason::UnsupportedAlgorithm);

    // HS256 "signed" with the public key's bytes (the classic key-confusion attack).
    let der = f.key.public_key_der();
    let pem = format!(
        "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    for secret in [der.as_slice(), pem.as_bytes()] {
        let forged = hs256(secret, json!({"alg": "HS256", "kid": "key-1"}), &claims);
        let answer = validate(&mut client, request(forged)).await;
        assert_eq!(reason_of(&answer), Reason::UnsupportedAlgorithm);
    }

    // A jku pointing at the attacker's JWKS is ignored: the decoy is never fetched.
    let attacker = SigningKey::generate("attacker").unwrap();
    let decoy = JwksServer::start(&[&attacker]).await;
    let forged = attacker.sign_with_header(
        &json!({"alg": "RS256", "kid": "attacker", "jku": decoy.url(), "x5u": decoy.url(), "jwk": attacker.jwk()}),
        &claims,
    );
    let answer = validate(&mut client, request(forged)).await;
    assert_eq!(reason_of(&answer), Reason::UnknownKey);
    assert_eq!(decoy.fetches(), 0, "a header-supplied key URL was fetched");

    // A genuine key of the pool signing for an issuer that is not configured.
    let mut foreign = id_claims();
    foreign["iss"] = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Unconfigured".into();
    let answer = validate(&mut client, request(f.key.sign_claims(&foreign))).await;
    assert_eq!(reason_of(&answer), Reason::UnknownIssuer);
}

#[tokio::test]
async fn empty_and_oversized_tokens_are_invalid_arguments() {
    let f = fixture().await;
    let mut client = client(&f.service).await;
    // Over max_token_bytes (16 KiB), and over the gRPC message limit (64 KiB) too.
    for token in [
        "".to_string(),
        "Bearer ".into(),
        "x".repeat(16 * 1024 + 1),
        "x".repeat(1_000_000),
    ] {
        let status = client.validate_token(request(token)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    let status = client
        .validate_token(proto::ValidateTokenRequest {
            expected_token_use: 9,
            ..request("a.b.c")
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_cached_token_stops_validating_the_second_it_expires() {
    let f = fixture().await;
    let mut client = client(&f.service).await;
    let mut claims = id_claims();
    let exp = now() + 2;
    claims["exp"] = exp.into();
    let token = f.key.sign_claims(&claims);

    assert!(validate(&mut client, request(token.clone())).await.valid);
    let cache = f
        .service
        .app
        .validator
        .cache()
        .expect("cache on by default");
    assert_eq!(cache.entry_count(), 1);
    assert!(
        validate(&mut client, request(token.clone())).await.valid,
        "a cache hit"
    );

    // Poll (bounded): answers computed wholly before exp are valid; the first one
    // started at or after exp is EXPIRED, although the token is still cached.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let before = now();
        let answer = validate(&mut client, request(token.clone())).await;
        let after = now();
        if before >= exp {
            assert_eq!(reason_of(&answer), Reason::Expired, "{answer:?}");
            break;
        }
        if after < exp {
            assert!(answer.valid, "{answer:?}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "clock did not pass exp"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_cache_can_be_turned_off() {
    let key = SigningKey::generate("key-1").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let mut config = config_for(&jwks.url());
    config.token_cache.enabled = false;
    let service = start_service(config).await;
    let mut client = client(&service).await;
    let token = key.sign_claims(&id_claims());
    assert!(validate(&mut client, request(token.clone())).await.valid);
    // Nothing else holds the verified token: the answer is built by moving its claims.
    let answer = validate(&mut client, request(token)).await;
    let claims = answer.claims.expect("valid");
    assert_eq!(claims.username, "alice");
    assert_eq!(claims.groups, vec!["admin", "users"]);
    assert_eq!(claims.client_id, CLIENT_ID);
    assert_eq!(claims.issuer, issuer());
    let json: serde_json::Value = serde_json::from_str(&claims.json).unwrap();
    assert_eq!(json["custom:tenant"], "acme");
    assert!(service.app.validator.cache().is_none());
}

#[tokio::test]
async fn iat_and_nbf_may_run_ahead_by_the_clock_skew_but_exp_keeps_no_leeway() {
    let f = fixture().await;
    let mut client = client(&f.service).await;
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = id_claims();
        edit(&mut claims);
        f.key.sign_claims(&claims)
    };
    // Cognito's clock a little ahead of ours: a fresh token is good.
    for (case, token) in [
        ("iat 2 s ahead", with(&|c| c["iat"] = (now() + 2).into())),
        ("nbf 30 s ahead", with(&|c| c["nbf"] = (now() + 30).into())),
        ("iat 55 s ahead", with(&|c| c["iat"] = (now() + 55).into())),
    ] {
        let answer = validate(&mut client, request(token)).await;
        assert!(answer.valid, "{case}: {}", answer.message);
    }
    // Beyond the default 60 s skew, and exp with the default 0 leeway.
    for (case, token, reason) in [
        (
            "iat 120 s ahead",
            with(&|c| c["iat"] = (now() + 120).into()),
            Reason::NotYetValid,
        ),
        (
            "nbf 120 s ahead",
            with(&|c| c["nbf"] = (now() + 120).into()),
            Reason::NotYetValid,
        ),
        (
            "expired 1 s ago",
            with(&|c| c["exp"] = (now() - 1).into()),
            Reason::Expired,
        ),
    ] {
        let answer = validate(&mut client, request(token)).await;
        assert_eq!(reason_of(&answer), reason, "{case}: {}", answer.message);
    }
}
