//! A request body handed to a component through `wasi:http` that is read to its end even
//! when the component does not read it all ([`ReadToEnd`]). hyper keeps an HTTP/1.1
//! connection open after a request only once that request's body has been read; a
//! component that answers without reading the body (any component may) would otherwise
//! have the connection closed under the client, which then fails its next request on it.

use bytes::Buf;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// How long the rest of an unread body may take to arrive before the connection is given up.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// A request body which, dropped before its end, is read to its end (at most `limit` bytes,
/// within [`DRAIN_TIME`]) by a task of its own.
pub struct ReadToEnd<B>
where
    B: Body + Send + 'static,
{
    inner: Option<Pin<Box<B>>>,
    limit: u64,
}

impl<B> ReadToEnd<B>
where
    B: Body + Send + 'static,
{
    /// `body`, read to its end (at most `limit` bytes) if dropped before.
    pub fn new(body: B, limit: u64) -> Self {
        ReadToEnd {
            inner: Some(Box::pin(body)),
            limit,
        }
    }
}

impl<B> Body for ReadToEnd<B>
where
    B: Body + Send + 'static,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.inner.as_mut() {
            Some(inner) => inner.as_mut().poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(|inner| inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |inner| inner.size_hint())
    }
}

impl<B> Drop for ReadToEnd<B>
where
    B: Body + Send + 'static,
{
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        if inner.is_end_stream() || inner.size_hint().lower() > self.limit {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let limit = self.limit;
        runtime.spawn(async move {
            let mut inner = inner;
            let read_to_end = async {
                let mut read = 0u64;
                while read <= limit {
                    match inner.frame().await {
                        Some(Ok(frame)) => {
                            let bytes = frame.data_ref().map_or(0, Buf::remaining);
                            read = read.saturating_add(bytes as u64);
                        }
                        Some(Err(_)) | None => break,
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIME, read_to_end).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::StreamBody;
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A body of `chunks` chunks that counts how many were read.
    fn counted(
        chunks: usize,
        read: Arc<AtomicUsize>,
    ) -> impl Body<Data = Bytes, Error = Infallible> + Send + 'static {
        let frames = (0..chunks).map(move |_| {
            read.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"chunk")))
        });
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_is_read_to_its_end() {
        let read = Arc::new(AtomicUsize::new(0));
        let mut body = ReadToEnd::new(counted(3, read.clone()), 1 << 20);
        body.frame().await.unwrap().unwrap();
        assert_eq!(read.load(Ordering::SeqCst), 1);
        drop(body);
        for _ in 0..100 {
            if read.load(Ordering::SeqCst) == 3 {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the rest was not read: {read:?}");
    }

    #[tokio::test]
    async fn no_more_than_the_limit_is_read() {
        let read = Arc::new(AtomicUsize::new(0));
        let body = ReadToEnd::new(counted(100, read.clone()), 12);
        drop(body);
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        // 5-byte chunks: the third passes the 12-byte limit and ends the reading.
        assert_eq!(read.load(Ordering::SeqCst), 3);
    }
}
