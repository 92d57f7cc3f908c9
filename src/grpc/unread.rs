//! Answers the peer has not read yet, counted per connection (see
//! [`crate::net`] for the stall bound that uses the count).
//!
//! Each accepted connection carries its [`ConnectionState`] in tonic's
//! connect info. [`CountUnreadAnswers`] takes it out of the request (putting
//! back the transport's own connect info, so `remote_addr()` and
//! `peer_certs()` keep working), counts the answer until its body is dropped,
//! and refuses a call at once when its connection already leaves answers
//! unread while the total is at `server.max_unread_answers`. A refusal is a
//! trailers-only RESOURCE_EXHAUSTED: it needs no flow-control window, so even
//! a peer with a zero window gets it and its stream closes.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::transport::server::Connected;
use tower::{Layer, Service};

use crate::net::{ConnectionState, Guarded, UnreadAnswer};

/// A connection's state and the transport's own connect info.
#[derive(Clone)]
pub struct ConnectionInfo {
    state: Arc<ConnectionState>,
    restore: Arc<dyn Fn(&mut http::Extensions) + Send + Sync>,
}

impl<T: Connected> Connected for Guarded<T> {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        let inner = self.get_ref().connect_info();
        ConnectionInfo {
            state: self.state().clone(),
            restore: Arc::new(move |extensions| {
                extensions.insert(inner.clone());
            }),
        }
    }
}

/// The layer; see the module docs.
#[derive(Clone, Copy, Default)]
pub struct CountUnreadAnswers;

impl<S> Layer<S> for CountUnreadAnswers {
    type Service = UnreadAnswers<S>;

    fn layer(&self, inner: S) -> Self::Service {
        UnreadAnswers { inner }
    }
}

/// The service the layer wraps around the router.
#[derive(Clone)]
pub struct UnreadAnswers<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for UnreadAnswers<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<CountedBody<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let state = request
            .extensions_mut()
            .remove::<ConnectionInfo>()
            .map(|info| {
                (info.restore)(request.extensions_mut());
                info.state
            });
        if let Some(state) = &state
            && state.should_refuse()
        {
            state.refused();
            let refusal = tonic::Status::resource_exhausted(
                "answers on this connection are not being read; read them or use another connection",
            )
            .into_http::<R>()
            .map(|body| CountedBody {
                inner: body,
                _answer: None,
            });
            return Box::pin(std::future::ready(Ok(refusal)));
        }
        let answered = self.inner.call(request);
        Box::pin(async move {
            let response = answered.await?;
            let answer = state.map(UnreadAnswer::new);
            Ok(response.map(|inner| CountedBody {
                inner,
                _answer: answer,
            }))
        })
    }
}

/// An answer's body, counted as unread until the protocol drops it.
pub struct CountedBody<B> {
    inner: B,
    _answer: Option<UnreadAnswer>,
}

impl<B: http_body::Body + Unpin> http_body::Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
