//! Keeps the contract's status codes at the transport limit: a request larger
//! than `server.max_request_bytes` is refused by tonic's decoder with
//! OUT_OF_RANGE; the contract promises INVALID_ARGUMENT for an oversized
//! token, so this layer rewrites that one status (and nothing else).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tower::{Layer, Service};

/// The layer; see the module docs.
#[derive(Clone, Copy, Default)]
pub struct OversizeIsInvalidArgument;

impl<S> Layer<S> for OversizeIsInvalidArgument {
    type Service = OversizeStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OversizeStatus { inner }
    }
}

/// The service the layer wraps around the router.
#[derive(Clone)]
pub struct OversizeStatus<S> {
    inner: S,
}

const OUT_OF_RANGE: &str = "11";
const TOO_LARGE: &str = "message%20length%20too%20large";

impl<S, B, R> Service<http::Request<B>> for OversizeStatus<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            let headers = response.headers_mut();
            let oversize = headers
                .get("grpc-status")
                .is_some_and(|v| v == OUT_OF_RANGE)
                && headers
                    .get("grpc-message")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|m| m.contains(TOO_LARGE));
            if oversize {
                headers.insert("grpc-status", http::HeaderValue::from_static("3"));
                headers.insert(
                    "grpc-message",
                    http::HeaderValue::from_static(
                        "the%20request%20is%20larger%20than%20server.max_request_bytes",
                    ),
                );
            }
            Ok(response)
        })
    }
}
