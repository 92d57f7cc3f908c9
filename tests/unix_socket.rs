//! The sidecar transport: the service listening on a Unix domain socket,
//! reached by a tonic client and by the CLI's `validate` and `health`.

mod common;

use common::{process::BIN, *};
use token_validator::{dev::SigningKey, grpc::client as grpc_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_answers_on_a_unix_socket() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("token-validator.sock");
    // A stale socket file from an earlier run is replaced, not an error.
    std::fs::write(&socket, b"").unwrap();
    let mut config = config_for(&jwks.url());
    config.listen = format!("unix://{}", socket.display());
    let service = start_service(config).await;
    let addr = format!("unix://{}", socket.display());
    assert_eq!(service.addr, addr);

    let channel = grpc_client::connect(&addr, TIMEOUT).await.unwrap();
    let token = key.sign_claims(&id_claims());
    let answer = grpc_client::validate(channel.clone(), request(token.clone()))
        .await
        .unwrap();
    assert!(answer.valid, "{answer:?}");
    assert_eq!(grpc_client::health(channel, "").await.unwrap(), 1);

    let cli = |args: Vec<String>| {
        let bin = BIN.to_string();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(bin).args(args).output().unwrap()
            })
            .await
            .unwrap()
        }
    };
    let output = cli(vec![
        "validate".into(),
        "--addr".into(),
        addr.clone(),
        token,
    ])
    .await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = cli(vec!["health".into(), "--addr".into(), addr.clone()]).await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "SERVING");
    service.stop().await.unwrap();
    let output = cli(vec!["health".into(), "--addr".into(), addr]).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "health fails once the server is gone"
    );
}
