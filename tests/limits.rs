//! Limits answer as documented: calls in flight (RESOURCE_EXHAUSTED at once,
//! no queue), the per-call timeout, and the per-caller rate limit; health keeps
//! answering while the service sheds load.

mod common;

use std::time::Duration;

use common::*;
use token_validator::{dev::SigningKey, grpc::client as grpc_client};
use tonic::Code;

async fn service_with(
    edit: impl FnOnce(&mut token_validator::Config),
    jwks: &JwksServer,
) -> token_validator::RunningService {
    let mut config = config_for(&jwks.url());
    config.userinfo.cognito_lookup = true;
    config.userinfo.cognito_endpoint = format!("http://{}/", jwks.addr);
    edit(&mut config);
    start_service(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_concurrent_requests_calls_are_shed_at_once() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    jwks.set_get_user_delay(Duration::from_millis(1500));
    let service = service_with(|c| c.server.max_concurrent_requests = 2, &jwks).await;
    let channel = grpc_client::connect(&service.url(), TIMEOUT).await.unwrap();

    let mut slow = Vec::new();
    for _ in 0..2 {
        let channel = channel.clone();
        let token = key.sign_claims(&access_claims());
        slow.push(tokio::spawn(async move {
            grpc_client::user_info(channel, token).await
        }));
    }
    assert!(eventually(|| async { jwks.get_user_calls() >= 2 }).await);
    // Both slots are taken: the next call is refused, not queued behind them.
    let shed = grpc_client::validate(channel.clone(), request(key.sign_claims(&id_claims()))).await;
    match shed {
        Err(grpc_client::ClientError::Status(status)) => {
            assert_eq!(status.code(), Code::ResourceExhausted);
            assert!(
                status.message().contains("max_concurrent_requests"),
                "{}",
                status.message()
            );
        }
        other => panic!("expected RESOURCE_EXHAUSTED, got {other:?}"),
    }
    assert!(
        slow.iter().all(|call| !call.is_finished()),
        "the refusal came only after the slow calls ended: it waited for a slot"
    );
    assert_eq!(
        grpc_client::health(channel.clone(), "").await.unwrap(),
        1,
        "health answers while shedding"
    );
    for call in slow {
        assert!(call.await.unwrap().is_ok());
    }
    // Slots free again: calls are admitted.
    assert!(
        grpc_client::validate(channel, request(key.sign_claims(&id_claims())))
            .await
            .unwrap()
            .valid
    );
}

#[tokio::test]
async fn a_call_over_the_request_timeout_is_deadline_exceeded() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    jwks.set_get_user_delay(Duration::from_secs(3));
    let service = service_with(|c| c.server.request_timeout_ms = 300, &jwks).await;
    let channel = grpc_client::connect(&service.url(), TIMEOUT).await.unwrap();
    match grpc_client::user_info(channel, key.sign_claims(&access_claims())).await {
        Err(grpc_client::ClientError::Status(status)) => {
            assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        }
        other => panic!("expected DEADLINE_EXCEEDED, got {other:?}"),
    }
}

#[tokio::test]
async fn the_per_caller_rate_limit_refuses_the_excess() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let service = service_with(|c| c.server.rate_limit_per_caller = 5, &jwks).await;
    let mut client = client(&service).await;
    let token = key.sign_claims(&id_claims());
    let mut codes = Vec::new();
    for _ in 0..20 {
        codes.push(match client.validate_token(request(token.clone())).await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        });
    }
    let ok = codes.iter().filter(|c| **c == Code::Ok).count();
    assert!(ok >= 5, "the burst of 5 is admitted: {codes:?}");
    assert!(codes[..5].iter().all(|c| *c == Code::Ok));
    assert!(codes.contains(&Code::ResourceExhausted), "{codes:?}");
    assert!(ok < 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_per_connection_limit_wait_for_a_free_stream() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    jwks.set_get_user_delay(Duration::from_millis(800));
    let service = service_with(|c| c.server.max_concurrent_streams = 2, &jwks).await;
    // One HTTP/2 connection: the server's SETTINGS allow 2 open streams on it.
    let channel = grpc_client::connect(&service.url(), TIMEOUT).await.unwrap();
    // One round trip first, so the client has read those SETTINGS: until it has,
    // HTTP/2 lets it open any number of streams, and the server refuses the ones
    // over its limit (REFUSED_STREAM) instead of the client queueing them.
    grpc_client::health(channel.clone(), "").await.unwrap();
    let mut calls = Vec::new();
    for _ in 0..4 {
        let channel = channel.clone();
        let token = key.sign_claims(&access_claims());
        calls.push(tokio::spawn(async move {
            grpc_client::user_info(channel, token).await
        }));
    }
    for call in calls {
        let answer = call.await.unwrap();
        assert!(
            answer.is_ok(),
            "a queued stream failed instead of waiting: {answer:?}"
        );
    }
    assert_eq!(jwks.get_user_calls(), 4);
    // Each call held its stream through its GetUser: never more than 2 at once,
    // and the limit was reached (counted by the stand-in, no waiting to see).
    assert_eq!(
        jwks.get_user_most_at_once(),
        2,
        "the per-connection stream limit was not what bounded the calls"
    );
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let service = service_with(
        |c| {
            c.server.http2_keepalive_interval_secs = 1;
            c.server.http2_keepalive_timeout_secs = 1;
        },
        &jwks,
    )
    .await;
    // A raw HTTP/2 client: preface and SETTINGS, then silence (no ACKs, no PING replies).
    let mut socket = tokio::net::TcpStream::connect(&service.addr).await.unwrap();
    socket
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    socket
        .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let mut buffer = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept a silent connection open");
}
