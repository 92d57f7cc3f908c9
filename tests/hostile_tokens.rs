//! The attack corpus: each hostile token gets its exact Reason from the real
//! server, nothing panics, and no header-supplied key URL is ever fetched.

mod common;

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use common::*;
use serde_json::{Value, json};
use token_validator::{config::PoolConfig, dev::SigningKey, grpc::proto::Reason};
use tonic::Code;

const POOL_B: &str = "us-east-1_PoolB2";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// header.payload.signature from raw parts (nothing re-encoded for you).
fn raw(header: &str, payload: &[u8], signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header), b64(payload), b64(signature))
}

fn hmac(alg: aws_lc_rs::hmac::Algorithm, secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let tag = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(alg, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_token_gets_its_exact_reason_and_nothing_is_fetched_for_it() {
    let key_a = SigningKey::generate("a-key").unwrap();
    let key_b = SigningKey::generate("b-key").unwrap();
    let jwks_a = JwksServer::start(&[&key_a]).await;
    // Pool A also publishes an EC key: skipped at load (only RSA is accepted).
    let mut published = vec![key_a.jwk()];
    published.push(
        json!({"kty": "EC", "crv": "P-256", "kid": "ec-key", "use": "sig", "alg": "ES256",
        "x": b64([7u8; 32]), "y": b64([9u8; 32])}),
    );
    jwks_a.set_raw_keys(published);
    let jwks_b = JwksServer::start(&[&key_b]).await;
    let attacker = SigningKey::generate("attacker").unwrap();
    let decoy = JwksServer::start(&[&attacker]).await;

    let mut config = config_for(&jwks_a.url());
    config.pools.push(PoolConfig {
        name: "b".into(),
        user_pool_id: POOL_B.into(),
        jwks_url: Some(jwks_b.url()),
        ..config.pools[0].clone()
    });
    let service = start_service(config).await;
    let mut client = client(&service).await;
    let fetches_a = jwks_a.fetches();

    let claims = id_claims();
    let good = key_a.sign_claims(&claims);
    let (good_input, _) = good.rsplit_once('.').unwrap();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = id_claims();
        edit(&mut c);
        key_a.sign_claims(&c)
    };
    let header_a = r#"{"alg":"RS256","kid":"a-key"}"#;
    let signed_raw = |header: &str, payload: &[u8]| {
        let input = format!("{}.{}", b64(header), b64(payload));
        format!("{input}.{}", b64(key_a.sign(input.as_bytes())))
    };
    let der = key_a.public_key_der();
    let pem = format!(
        "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
        STANDARD.encode(&der)
    );
    let other_token = with(&|c| c["jti"] = "another".into());
    let other_signature = other_token.rsplit('.').next().unwrap().to_string();
    let mut pool_b_claims = id_claims();
    pool_b_claims["iss"] = format!("https://cognito-idp.{REGION}.amazonaws.com/{POOL_B}").into();

    let mut corpus: Vec<(&str, String, Reason)> = Vec::new();
    for alg in ["none", "None", "NONE"] {
        corpus.push((
            "alg none",
            raw(
                &format!(r#"{{"alg":"{alg}","kid":"a-key"}}"#),
                claims.to_string().as_bytes(),
                b"",
            ),
            Reason::UnsupportedAlgorithm,
        ));
        corpus.push((
            "alg none with a signature",
            raw(
                &format!(r#"{{"alg":"{alg}","kid":"a-key"}}"#),
                claims.to_string().as_bytes(),
                b"x",
            ),
            Reason::UnsupportedAlgorithm,
        ));
    }
    for (name, alg) in [
        ("HS256", aws_lc_rs::hmac::HMAC_SHA256),
        ("HS384", aws_lc_rs::hmac::HMAC_SHA384),
        ("HS512", aws_lc_rs::hmac::HMAC_SHA512),
    ] {
        for secret in [der.as_slice(), pem.as_bytes()] {
            corpus.push((
                "HMAC with the public key",
                hmac(alg, secret, &json!({"alg": name, "kid": "a-key"}), &claims),
                Reason::UnsupportedAlgorithm,
            ));
        }
    }
    corpus.push((
        "RS256 header on an EC key's kid",
        key_a.sign_with_header(&json!({"alg": "RS256", "kid": "ec-key"}), &claims),
        Reason::UnknownKey,
    ));
    for kid in [
        "../../../../etc/passwd",
        "' OR '1'='1' --",
        "a\u{0}b",
        &"k".repeat(10_000),
    ] {
        corpus.push((
            "hostile kid",
            key_a.sign_with_header(&json!({"alg": "RS256", "kid": kid}), &claims),
            Reason::UnknownKey,
        ));
    }
    for param in ["jku", "x5u"] {
        corpus.push((
            "header key URL",
            attacker.sign_with_header(
                &json!({"alg": "RS256", "kid": "attacker", param: decoy.url()}),
                &claims,
            ),
            Reason::UnknownKey,
        ));
    }
    corpus.push((
        "embedded jwk",
        attacker.sign_with_header(
            &json!({"alg": "RS256", "kid": "attacker", "jwk": attacker.jwk()}),
            &claims,
        ),
        Reason::UnknownKey,
    ));
    corpus.push(("embedded x5c", attacker.sign_with_header(&json!({"alg": "RS256", "kid": "attacker", "x5c": [STANDARD.encode(attacker.public_key_der())]}), &claims), Reason::UnknownKey));
    corpus.push((
        "embedded jwk with a known kid",
        attacker.sign_with_header(
            &json!({"alg": "RS256", "kid": "a-key", "jwk": attacker.jwk()}),
            &claims,
        ),
        Reason::BadSignature,
    ));
    corpus.push((
        "duplicate header key",
        signed_raw(
            r#"{"alg":"RS256","kid":"a-key","kid":"attacker"}"#,
            claims.to_string().as_bytes(),
        ),
        Reason::Malformed,
    ));
    let payload = claims.to_string();
    let duplicated = format!(r#"{{"iss":"https://evil","{}"#, &payload[1..]);
    corpus.push((
        "duplicate payload claim",
        signed_raw(header_a, duplicated.as_bytes()),
        Reason::Malformed,
    ));
    corpus.push((
        "non-UTF-8 payload",
        signed_raw(header_a, &[0xff, 0xfe, b'{', b'}']),
        Reason::Malformed,
    ));
    corpus.push(("base64 padding", format!("{}=", good), Reason::Malformed));
    corpus.push((
        "padded payload",
        format!(
            "{}.{}==.{}",
            b64(header_a),
            b64(payload.as_bytes()),
            good.rsplit('.').next().unwrap()
        ),
        Reason::Malformed,
    ));
    corpus.push(("four segments", format!("{good}.extra"), Reason::Malformed));
    corpus.push(("two segments", good_input.to_string(), Reason::Malformed));
    corpus.push((
        "empty signature",
        format!("{good_input}."),
        Reason::Malformed,
    ));
    corpus.push((
        "another token's signature",
        format!("{good_input}.{other_signature}"),
        Reason::BadSignature,
    ));
    corpus.push((
        "exp as string",
        with(&|c| c["exp"] = (now() + 600).to_string().into()),
        Reason::Malformed,
    ));
    corpus.push((
        "exp as float",
        with(&|c| c["exp"] = json!((now() + 600) as f64 + 0.5)),
        Reason::Malformed,
    ));
    corpus.push((
        "negative exp",
        with(&|c| c["exp"] = json!(-1)),
        Reason::Expired,
    ));
    corpus.push((
        "exp 2^63",
        signed_raw(
            header_a,
            payload
                .replace(
                    &format!("\"exp\":{}", claims["exp"]),
                    "\"exp\":9223372036854775808",
                )
                .as_bytes(),
        ),
        Reason::Malformed,
    ));
    corpus.push((
        "missing exp",
        with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        }),
        Reason::Malformed,
    ));
    let iss = issuer();
    for bad_iss in [
        format!("{iss}/"),
        iss.to_uppercase(),
        iss.replace("us-east-1.amazonaws", "eu-west-1.amazonaws"),
        iss.replace("https://", "http://"),
    ] {
        corpus.push((
            "issuer variant",
            with(&|c| c["iss"] = bad_iss.clone().into()),
            Reason::UnknownIssuer,
        ));
    }
    corpus.push((
        "aud with a good and a bad client",
        with(&|c| c["aud"] = json!([CLIENT_ID, "evil-client"])),
        Reason::WrongClient,
    ));
    corpus.push((
        "token_use missing",
        with(&|c| {
            c.as_object_mut().unwrap().remove("token_use");
        }),
        Reason::WrongTokenUse,
    ));
    corpus.push((
        "token_use refresh",
        with(&|c| c["token_use"] = "refresh".into()),
        Reason::WrongTokenUse,
    ));
    corpus.push((
        "pool B token with pool A's kid",
        key_b.sign_with_header(&json!({"alg": "RS256", "kid": "a-key"}), &pool_b_claims),
        Reason::UnknownKey,
    ));
    let nested = |depth: usize| {
        let json = format!(
            r#"{{"iss":"{iss}","exp":{},"n":{}1{}}}"#,
            now() + 600,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        signed_raw(header_a, json.as_bytes())
    };
    // 5,000 levels still fit in 16 KiB: the parser's depth limit answers.
    corpus.push(("nested JSON 5,000 deep", nested(5_000), Reason::Malformed));
    // Claim values that serde would quote back whole: a whole token as `exp`,
    // a payload that is one JSON string, a huge issuer and client id.
    corpus.push((
        "exp is a whole token",
        with(&|c| c["exp"] = good.clone().into()),
        Reason::Malformed,
    ));
    corpus.push((
        "payload is a JSON string holding a token",
        signed_raw(header_a, json!(good.clone()).to_string().as_bytes()),
        Reason::Malformed,
    ));
    corpus.push((
        "issuer is a whole token",
        with(&|c| c["iss"] = good.clone().into()),
        Reason::UnknownIssuer,
    ));
    corpus.push((
        "aud is a list of tokens",
        with(&|c| c["aud"] = json!([good.clone(), good.clone()])),
        Reason::WrongClient,
    ));

    for (case, token, expected) in &corpus {
        let answer = validate(&mut client, request(token.clone())).await;
        assert!(!answer.valid, "{case}: validated");
        assert_eq!(reason_of(&answer), *expected, "{case}: {}", answer.message);
        assert!(
            !answer.message.contains(token.as_str()),
            "{case}: token echoed"
        );
        assert!(
            answer.message.chars().count() <= 200,
            "{case}: {} characters in the message",
            answer.message.chars().count()
        );
        // No run of 40 characters of either token (the one sent, the one
        // embedded in claims) comes back: values are cut at 32.
        for echoed in [token.as_str(), good.as_str()] {
            let chars: Vec<char> = echoed.chars().collect();
            assert!(
                !chars
                    .windows(40)
                    .step_by(7)
                    .any(|w| answer.message.contains(&w.iter().collect::<String>())),
                "{case}: part of a token echoed: {}",
                answer.message
            );
        }
    }
    // The real pool B token still validates; so does pool A's.
    assert!(
        validate(&mut client, request(key_b.sign_claims(&pool_b_claims)))
            .await
            .valid
    );
    assert!(validate(&mut client, request(good.clone())).await.valid);

    // 10,000 levels (27 KB encoded) and a 16 KiB + 1 token are over the size limit.
    for oversized in [nested(10_000), "a".repeat(16 * 1024 + 1)] {
        let status = client.validate_token(request(oversized)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    assert_eq!(decoy.fetches(), 0, "a header-supplied key URL was fetched");
    // Unknown kids cost at most one refetch of pool A within the cooldown.
    assert!(
        jwks_a.fetches() <= fetches_a + 1,
        "{} refetches",
        jwks_a.fetches() - fetches_a
    );
}
