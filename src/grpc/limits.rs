//! Limits at the edge: admission control (calls in flight, per-caller rate)
//! and the status code of an over-limit request.
//!
//! A request larger than `server.max_request_bytes` is refused by tonic's
//! decoder with OUT_OF_RANGE; the contract promises INVALID_ARGUMENT for an
//! oversized token, so [`OversizeIsInvalidArgument`] rewrites that one status.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tower::{Layer, Service};

use crate::rate::TokenBucket;

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
                // The same status, with the same ErrorInfo, as a token over
                // validation.max_token_bytes.
                let status = super::convert::token_status(
                    tonic::Code::InvalidArgument,
                    "the request is larger than server.max_request_bytes".into(),
                    "TOKEN_TOO_LARGE",
                    [],
                );
                let _ = status.add_header(headers);
            }
            Ok(response)
        })
    }
}

/// Admission control for the service's calls: a global cap on calls in flight
/// (RESOURCE_EXHAUSTED at once when full: no queue to grow) and an optional
/// per-caller rate limit, keyed by the mTLS client certificate when there is
/// one and by the peer IP otherwise.
pub struct Admission {
    /// Calls admitted and not yet finished. A count, not a semaphore: no call
    /// ever waits for a slot, and tokio's semaphore takes a lock on every
    /// release, which both workers contended for on every call.
    in_flight: AtomicUsize,
    max_in_flight: usize,
    per_caller: Option<CallerLimiter>,
}

impl Admission {
    pub fn new(max_in_flight: usize, per_caller_per_sec: u32) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            max_in_flight,
            per_caller: (per_caller_per_sec > 0).then(|| CallerLimiter::new(per_caller_per_sec)),
        }
    }

    /// A permit to run the call, held until it ends.
    pub fn admit<T>(&self, request: &tonic::Request<T>) -> Result<Permit<'_>, tonic::Status> {
        if let Some(limiter) = &self.per_caller
            && let Some(caller) = Caller::of(request)
            && !limiter.allow(caller)
        {
            return Err(tonic::Status::resource_exhausted(
                "rate limit for this caller exceeded (server.rate_limit_per_caller)",
            ));
        }
        self.admit_counted()
    }

    /// Admission by the in-flight count alone.
    pub fn admit_counted(&self) -> Result<Permit<'_>, tonic::Status> {
        // Count first, then check: a refused call undoes its count (through the
        // permit's drop), so the count never stays above the calls running.
        let permit = Permit(&self.in_flight);
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            return Err(tonic::Status::resource_exhausted(format!(
                "server busy: {} calls in flight (server.max_concurrent_requests)",
                self.max_in_flight
            )));
        }
        Ok(permit)
    }
}

/// One admitted call; dropping it frees its slot.
pub struct Permit<'a>(&'a AtomicUsize);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Who is calling, for the per-caller limit.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Caller {
    Certificate([u8; 32]),
    Address(std::net::IpAddr),
}

impl Caller {
    fn of<T>(request: &tonic::Request<T>) -> Option<Self> {
        if let Some(leaf) = request
            .peer_certs()
            .and_then(|certs| certs.first().cloned())
        {
            return Some(Caller::Certificate(crate::rate::sha256(leaf.as_ref())));
        }
        request.remote_addr().map(|addr| Caller::Address(addr.ip()))
    }
}

/// Token buckets per caller, forgotten after a minute of silence.
struct CallerLimiter {
    per_sec: u32,
    buckets: moka::sync::Cache<Caller, Arc<TokenBucket>>,
}

impl CallerLimiter {
    fn new(per_sec: u32) -> Self {
        Self {
            per_sec,
            buckets: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(60))
                .build(),
        }
    }

    fn allow(&self, caller: Caller) -> bool {
        self.buckets
            .get_with(caller, || Arc::new(TokenBucket::new(self.per_sec)))
            .try_take()
    }
}
