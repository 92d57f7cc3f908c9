//! The key path end to end: rotation, removal, outages and unknown-kid floods,
//! against a real HTTP JWKS server.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::*;
use token_validator::{dev::SigningKey, grpc::proto::Reason};
use tonic::Code;

#[tokio::test]
async fn rotated_key_is_accepted_without_restart_and_removed_key_stops_validating() {
    let old = SigningKey::generate("old").unwrap();
    let new = SigningKey::generate("new").unwrap();
    let jwks = JwksServer::start(&[&old]).await;
    let mut config = config_for(&jwks.url());
    config.jwks.refresh_interval_secs = 1;
    let service = start_service(config).await;
    let mut client = client(&service).await;

    let old_token = old.sign_claims(&id_claims());
    assert!(
        validate(&mut client, request(old_token.clone()))
            .await
            .valid
    );

    // A new kid appears: the first token signed with it triggers a refetch and passes.
    jwks.set_keys(&[&old, &new]);
    let answer = validate(&mut client, request(new.sign_claims(&id_claims()))).await;
    assert!(answer.valid, "{answer:?}");

    // The old key is unpublished: after the next refresh its tokens fail,
    // including one that was valid (and cached) before.
    jwks.set_keys(&[&new]);
    let fetches = jwks.fetches();
    assert!(
        jwks.wait_for_fetches(fetches + 1).await,
        "no refresh happened"
    );
    let removed = eventually(|| {
        let mut client = client.clone();
        let token = old_token.clone();
        async move { reason_of(&validate(&mut client, request(token)).await) == Reason::UnknownKey }
    })
    .await;
    assert!(removed, "a token signed by a removed key still validates");
    let answer = validate(&mut client, request(old.sign_claims(&id_claims()))).await;
    assert_eq!(reason_of(&answer), Reason::UnknownKey);
    assert!(
        validate(&mut client, request(new.sign_claims(&id_claims())))
            .await
            .valid
    );
}

#[tokio::test]
async fn jwks_down_at_start_then_up_then_down_again() {
    // Reserve a port with nothing listening on it: connections are refused.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = probe.local_addr().unwrap();
    drop(probe);
    let key = SigningKey::generate("k").unwrap();
    let mut config = config_for(&format!("http://{addr}/jwks.json"));
    config.jwks.refresh_interval_secs = 1;
    let service = token_validator::App::spawn(config).await.unwrap();
    let url = service.url();
    let token = key.sign_claims(&id_claims());

    // Down: NOT_SERVING, and tokens get UNAVAILABLE (not "invalid").
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = token_validator::grpc::client::health(channel.clone(), "")
        .await
        .unwrap();
    assert_eq!(status, 2, "NOT_SERVING while no keys were ever loaded");
    let status =
        token_validator::grpc::client::health(channel.clone(), "tokenvalidator.v1.TokenValidator")
            .await
            .unwrap();
    assert_eq!(status, 2);
    let mut client = client(&service).await;
    let error = client
        .validate_token(request(token.clone()))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unavailable, "{error:?}");

    // Up: the retry loop loads the keys, health turns SERVING, the token is valid.
    let jwks = JwksServer::start_on(addr, &[&key]).await;
    assert!(service.wait_ready(TIMEOUT).await);
    let serving = eventually(|| {
        let channel = channel.clone();
        async move {
            token_validator::grpc::client::health(channel, "")
                .await
                .ok()
                == Some(1)
        }
    })
    .await;
    assert!(serving, "health never turned SERVING");
    assert!(validate(&mut client, request(token.clone())).await.valid);

    // Down again: refreshes fail, validation goes on with the last good keys.
    jwks.set_mode(Mode::Status(503));
    let fetches = jwks.fetches();
    assert!(
        jwks.wait_for_fetches(fetches + 2).await,
        "no failed refresh observed"
    );
    let fresh = key.sign_claims(&id_claims());
    let answer = validate(&mut client, request(fresh)).await;
    assert!(answer.valid, "{answer:?}");
    assert_eq!(service.app.keys.key_count(0), 1);
    let status = token_validator::grpc::client::health(channel, "")
        .await
        .unwrap();
    assert_eq!(status, 1, "still SERVING on the last good keys");
}

#[tokio::test]
async fn a_thousand_random_kids_at_once_cost_at_most_one_refetch() {
    let key = SigningKey::generate("real").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    // Slow answers make the refetch overlap with the flood.
    jwks.set_delay(Duration::from_millis(200));
    let service = start_service(config_for(&jwks.url())).await;
    let mut client = client(&service).await;
    assert_eq!(jwks.fetches(), 1);
    // One round trip first: the client then knows the server's stream limit
    // and queues the flood instead of opening streams the server refuses.
    assert!(
        validate(&mut client, request(key.sign_claims(&id_claims())))
            .await
            .valid
    );

    let attacker = SigningKey::generate("x").unwrap();
    let mut calls = Vec::new();
    for i in 0..1000 {
        let mut client = client.clone();
        let mut claims = id_claims();
        claims["jti"] = format!("flood-{i}").into();
        let token = attacker.sign_with_header(
            &serde_json::json!({"alg": "RS256", "kid": format!("random-{}", rand_suffix())}),
            &claims,
        );
        calls.push(tokio::spawn(async move {
            validate(&mut client, request(token)).await
        }));
    }
    for call in calls {
        let answer = tokio::time::timeout(TIMEOUT, call).await.unwrap().unwrap();
        assert_eq!(reason_of(&answer), Reason::UnknownKey);
    }
    assert!(
        jwks.fetches() <= 2,
        "{} JWKS fetches for a random-kid flood",
        jwks.fetches()
    );

    // Within the cooldown, a further unknown kid is answered without a fetch.
    let before = jwks.fetches();
    let mut client = client.clone();
    let token = attacker.sign_with_header(
        &serde_json::json!({"alg": "RS256", "kid": "late"}),
        &id_claims(),
    );
    assert_eq!(
        reason_of(&validate(&mut client, request(token)).await),
        Reason::UnknownKey
    );
    assert_eq!(jwks.fetches(), before);
    assert!(
        validate(&mut client, request(key.sign_claims(&id_claims())))
            .await
            .valid
    );
}

#[tokio::test]
async fn a_key_replaced_under_the_same_kid_invalidates_what_the_old_key_verified() {
    let r1 = SigningKey::generate("K").unwrap();
    let r2 = SigningKey::generate("K").unwrap();
    let jwks = JwksServer::start(&[&r1]).await;
    let mut config = config_for(&jwks.url());
    config.jwks.refresh_interval_secs = 1;
    let service = start_service(config).await;
    let mut client = client(&service).await;
    let metrics = service.metrics_addr.unwrap();

    let old_token = r1.sign_claims(&id_claims());
    assert!(
        validate(&mut client, request(old_token.clone()))
            .await
            .valid
    );
    // Cached now: a second answer comes from the cache.
    assert!(
        validate(&mut client, request(old_token.clone()))
            .await
            .valid
    );
    let rotations_before = metric_sum(
        &scrape_metrics(metrics).await,
        "token_validator_jwks_rotations_total",
        "pool=\"main\"",
    );

    // Same kid, other material.
    jwks.set_keys(&[&r2]);
    assert!(
        eventually(|| async {
            let answer = validate(&mut client.clone(), request(old_token.clone())).await;
            !answer.valid
        })
        .await,
        "a token of the replaced key stayed valid from the cache"
    );
    let answer = validate(&mut client, request(old_token.clone())).await;
    assert_eq!(
        reason_of(&answer),
        Reason::BadSignature,
        "{}",
        answer.message
    );
    assert!(
        validate(&mut client, request(r2.sign_claims(&id_claims())))
            .await
            .valid
    );
    let rotations = metric_sum(
        &scrape_metrics(metrics).await,
        "token_validator_jwks_rotations_total",
        "pool=\"main\"",
    );
    assert_eq!(
        rotations,
        rotations_before + 1.0,
        "the replacement counts as one rotation"
    );
}

#[tokio::test]
async fn a_kid_seen_before_it_was_published_validates_once_the_cooldown_has_passed() {
    let key = SigningKey::generate("K1").unwrap();
    let k3 = SigningKey::generate("K3").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let mut config = config_for(&jwks.url());
    config.jwks.refresh_interval_secs = 30;
    config.jwks.unknown_kid_cooldown_secs = 1;
    let service = start_service(config).await;
    let mut client = client(&service).await;

    let early = k3.sign_claims(&id_claims());
    assert_eq!(
        reason_of(&validate(&mut client, request(early.clone())).await),
        Reason::UnknownKey
    );
    let fetches = jwks.fetches();
    jwks.set_keys(&[&key, &k3]);
    // Well before the next scheduled refresh (~27-30 s), after the 1 s cooldown.
    assert!(
        eventually(|| async {
            validate(&mut client.clone(), request(k3.sign_claims(&id_claims())))
                .await
                .valid
        })
        .await,
        "a kid remembered as unknown stayed unknown after it was published"
    );
    assert!(validate(&mut client, request(early)).await.valid);
    // Each retry within the cooldown cost no fetch: one refetch at the most per second.
    assert!(
        jwks.fetches() - fetches <= 11,
        "{} fetches",
        jwks.fetches() - fetches
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_calls_keep_flowing_while_unknown_kids_wait_on_a_hanging_jwks() {
    let key = SigningKey::generate("real").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let mut config = config_for(&jwks.url());
    config.jwks.fetch_timeout_ms = 2_000;
    let service = start_service(config).await;
    jwks.set_delay(Duration::from_secs(60));
    let fetches = jwks.fetches();

    // 1,100 unknown-kid calls at once, over 50 connections (the server allows
    // 32 streams per connection).
    let attacker = SigningKey::generate("x").unwrap();
    let mut flood = Vec::new();
    for connection in 0..50 {
        let mut client = common::client(&service).await;
        // One round trip first, so the flood queues under the stream limit.
        assert!(
            validate(&mut client, request(key.sign_claims(&id_claims())))
                .await
                .valid
        );
        for i in 0..22 {
            let mut client = client.clone();
            let token = attacker.sign_with_header(
                &serde_json::json!({"alg": "RS256", "kid": format!("unknown-{connection}-{i}")}),
                &id_claims(),
            );
            flood.push(tokio::spawn(async move {
                client.validate_token(request(token)).await
            }));
        }
    }
    assert!(
        jwks.wait_for_fetches(fetches + 1).await,
        "no refetch started"
    );

    // Meanwhile, on a connection of their own: every valid call is answered valid.
    let mut client = common::client(&service).await;
    for _ in 0..5 {
        let answer = client
            .validate_token(request(key.sign_claims(&id_claims())))
            .await
            .expect("a valid call is answered during the refetch");
        assert!(answer.into_inner().valid);
    }
    let mut unknown = 0;
    for call in flood {
        let answer = tokio::time::timeout(TIMEOUT, call).await.unwrap().unwrap();
        let answer = answer.expect("an unknown-kid call is answered, not refused");
        assert_eq!(reason_of(&answer.into_inner()), Reason::UnknownKey);
        unknown += 1;
    }
    assert_eq!(unknown, 1_100);
}
