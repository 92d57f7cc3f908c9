//! Hostile clients for the connection-bound tests: an HTTP/2 peer that never
//! reads its answers. Loopback only.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use tokio::net::TcpStream;

/// One gRPC message frame of `ValidateTokenRequest { token: "a.b.c" }` (12 bytes).
pub fn tiny_request() -> Bytes {
    let message = [0x0a, 0x05, b'a', b'.', b'b', b'.', b'c'];
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    Bytes::from(frame)
}

/// An HTTP/2 connection with a zero initial stream window: it sends `streams`
/// ValidateToken requests, answers PINGs (h2 does) and never reads an answer.
/// Returns once every request is sent or the server refused or closed.
pub async fn slow_reader(addr: SocketAddr, streams: usize) -> (usize, tokio::task::JoinHandle<()>) {
    let Ok(tcp) = TcpStream::connect(addr).await else {
        return (0, tokio::spawn(async {}));
    };
    let Ok((client, connection)) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, Bytes>(tcp)
        .await
    else {
        return (0, tokio::spawn(async {}));
    };
    let mut held = Vec::new();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client;
    let mut sent = 0;
    for _ in 0..streams {
        let ready = tokio::time::timeout(Duration::from_secs(5), client.clone().ready()).await;
        let Ok(Ok(ready)) = ready else { break };
        client = ready;
        let request = http::Request::post(format!(
            "http://{addr}/tokenvalidator.v1.TokenValidator/ValidateToken"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
        let Ok((response, mut body)) = client.send_request(request, false) else {
            break;
        };
        if body.send_data(tiny_request(), true).is_err() {
            break;
        }
        held.push(response);
        sent += 1;
    }
    // Keep the streams (and so their unread answers) alive with the driver.
    let holder = tokio::spawn(async move {
        let _keep = (held, client);
        let _ = driver.await;
    });
    (sent, holder)
}
