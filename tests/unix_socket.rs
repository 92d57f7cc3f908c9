//! The sidecar transport: the service listening on a Unix domain socket,
//! reached by a tonic client and by the CLI's `validate` and `health`.

mod common;

use common::{process::BIN, *};
use token_validator::{config::ListenAddr, dev::SigningKey, grpc::client as grpc_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_answers_on_a_unix_socket() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("token-validator.sock");
    // A stale socket from an earlier run (bound, then its process gone) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let mut config = config_for(&jwks.url());
    config.listen = ListenAddr::Unix(socket.clone());
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

#[tokio::test]
async fn a_path_that_is_not_a_stale_socket_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let listen = |path: &std::path::Path| {
        let mut config = config_for("http://127.0.0.1:9/jwks.json");
        config.listen = ListenAddr::Unix(path.to_path_buf());
        config
    };

    // A regular file: an error naming it, and the file keeps its content.
    let file = dir.path().join("precious.txt");
    std::fs::write(&file, b"keep me").unwrap();
    let error = token_validator::App::spawn(listen(&file))
        .await
        .err()
        .expect("a regular file is not replaced");
    assert!(error.to_string().contains("is not a socket"), "{error}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");

    // A socket another process listens on: in use, left alone.
    let live = dir.path().join("live.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&live).unwrap();
    let error = token_validator::App::spawn(listen(&live))
        .await
        .err()
        .expect("a live socket is not replaced");
    assert!(
        error.to_string().contains("another process is listening"),
        "{error}"
    );
    assert!(live.exists());
}
