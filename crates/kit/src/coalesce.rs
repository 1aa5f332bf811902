//! Joins the chunks of a streamed body that arrive together into one.
//!
//! An upstream often sends several SSE events in one TCP segment (a model's
//! tokens, then `done` and the end of the body). hyper hands them over one
//! chunk at a time and actix would frame each as its own HTTP chunk in its
//! own `sendto`, so the client parses five chunks where the upstream's one
//! read held them all. [`Coalesce`] passes on at once what has arrived
//! together, as nginx does with `proxy_buffering off` (one write per upstream
//! read): one HTTP chunk, one write.
//!
//! How "together" is known: hyper's connection task decodes the next chunk
//! only after the previous one was taken, so after taking a chunk the stream
//! gives the scheduler one turn; this relies on that task running on the
//! same thread, as a client per actix worker has it. If that turn brought
//! another chunk, it gathers again; if it brought nothing, what it has goes
//! out. A chunk is thus held for at most one scheduler turn per chunk joined
//! to it, and never for more than [`MAX_JOINED`] bytes, so a continuous
//! stream still flows. The end of the body, arriving with the last event,
//! goes out in the same write.
//!
//! The first chunk is never held: actix writes the reply's head as soon as
//! the body has nothing ready, so a turn given then would send the head
//! alone and the first event in a second write, waking the client twice.
//! The first chunk goes out with the head; joining starts after it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;

/// The most bytes joined into one chunk.
pub const MAX_JOINED: usize = 64 * 1024;

/// A stream of byte chunks, with what arrived together joined into one.
pub struct Coalesce<S, E> {
    inner: S,
    /// What has been gathered and not yet passed on.
    gathered: Gathered,
    /// The last turn brought a chunk: give the scheduler another one.
    fresh: bool,
    /// A chunk has been passed on (the head has gone with it).
    started: bool,
    /// What ended the inner stream, passed on after the gathered bytes.
    ended: Option<Option<E>>,
}

enum Gathered {
    Nothing,
    One(Bytes),
    Joined(BytesMut),
}

impl Gathered {
    fn len(&self) -> usize {
        match self {
            Gathered::Nothing => 0,
            Gathered::One(bytes) => bytes.len(),
            Gathered::Joined(bytes) => bytes.len(),
        }
    }

    fn push(&mut self, chunk: Bytes) {
        *self = match std::mem::replace(self, Gathered::Nothing) {
            Gathered::Nothing => Gathered::One(chunk),
            Gathered::One(first) => {
                let mut joined = BytesMut::with_capacity(first.len() + chunk.len());
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&chunk);
                Gathered::Joined(joined)
            }
            Gathered::Joined(mut joined) => {
                joined.extend_from_slice(&chunk);
                Gathered::Joined(joined)
            }
        }
    }

    fn take(&mut self) -> Option<Bytes> {
        match std::mem::replace(self, Gathered::Nothing) {
            Gathered::Nothing => None,
            Gathered::One(bytes) => Some(bytes),
            Gathered::Joined(bytes) => Some(bytes.freeze()),
        }
    }
}

impl<S, E> Coalesce<S, E> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            gathered: Gathered::Nothing,
            fresh: false,
            started: false,
            ended: None,
        }
    }

    fn pass_on(&mut self) -> Option<Bytes> {
        let bytes = self.gathered.take();
        self.started |= bytes.is_some();
        bytes
    }
}

impl<S, E> Stream for Coalesce<S, E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.ended.is_some() {
                return match this.pass_on() {
                    Some(bytes) => Poll::Ready(Some(Ok(bytes))),
                    None => Poll::Ready(this.ended.as_mut().and_then(Option::take).map(Err)),
                };
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    this.gathered.push(chunk);
                    this.fresh = true;
                    if this.gathered.len() >= MAX_JOINED {
                        this.fresh = false;
                        return Poll::Ready(this.pass_on().map(Ok));
                    }
                }
                Poll::Ready(Some(Err(err))) => this.ended = Some(Some(err)),
                Poll::Ready(None) => this.ended = Some(None),
                Poll::Pending if this.fresh && this.started => {
                    // One scheduler turn for the connection task to decode
                    // what it has already read.
                    this.fresh = false;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Pending => {
                    this.fresh = false;
                    return match this.pass_on() {
                        Some(bytes) => Poll::Ready(Some(Ok(bytes))),
                        None => Poll::Pending,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn chunks(items: &[&'static str]) -> Vec<Result<Bytes, &'static str>> {
        items
            .iter()
            .map(|s| Ok(Bytes::from_static(s.as_bytes())))
            .collect()
    }

    #[actix_web::test]
    async fn chunks_ready_together_go_out_as_one_with_the_end() {
        let inner = futures_util::stream::iter(chunks(&["a", "b", "c"]));
        let out: Vec<_> = Coalesce::new(inner).collect().await;
        assert_eq!(out, vec![Ok(Bytes::from_static(b"abc"))]);
    }

    #[actix_web::test]
    async fn the_first_chunk_goes_at_once_and_later_ones_are_joined() {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, &str>>(8);
        let mut out = Coalesce::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
        sender.send(Ok(Bytes::from_static(b"head"))).await.unwrap();
        // Passed on in the same poll: no turn is given before the first.
        let first = futures_util::poll!(out.next());
        assert_eq!(first, Poll::Ready(Some(Ok(Bytes::from_static(b"head")))));
        sender.send(Ok(Bytes::from_static(b"one"))).await.unwrap();
        sender.send(Ok(Bytes::from_static(b"two"))).await.unwrap();
        assert_eq!(out.next().await, Some(Ok(Bytes::from_static(b"onetwo"))));
        // Nothing more has arrived: the stream waits, holding nothing back.
        let pending = futures_util::poll!(out.next());
        assert!(pending.is_pending());
        sender.send(Ok(Bytes::from_static(b"three"))).await.unwrap();
        assert_eq!(out.next().await, Some(Ok(Bytes::from_static(b"three"))));
        drop(sender);
        assert_eq!(out.next().await, None);
    }

    #[actix_web::test]
    async fn an_error_comes_after_the_bytes_before_it() {
        let mut items = chunks(&["x", "y"]);
        items.push(Err("broken"));
        let out: Vec<_> = Coalesce::new(futures_util::stream::iter(items))
            .collect()
            .await;
        assert_eq!(out, vec![Ok(Bytes::from_static(b"xy")), Err("broken")]);
    }

    #[actix_web::test]
    async fn a_long_burst_is_cut_at_the_cap() {
        let piece = Bytes::from(vec![b'z'; 1024]);
        let count = MAX_JOINED / 1024 * 2 + 1;
        let items = (0..count).map(|_| Ok::<_, ()>(piece.clone()));
        let out: Vec<_> = Coalesce::new(futures_util::stream::iter(items))
            .collect()
            .await;
        let sizes: Vec<usize> = out.iter().map(|c| c.as_ref().unwrap().len()).collect();
        assert_eq!(sizes, vec![MAX_JOINED, MAX_JOINED, 1024]);
    }

    #[actix_web::test]
    async fn a_chunk_never_waits_for_the_next_one() {
        // The producer sends the second chunk only once the first has been
        // passed on: a stream that waited for more would never end.
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, ()>>(8);
        let (passed_on, first_seen) = tokio::sync::oneshot::channel::<()>();
        let producer = actix_web::rt::spawn(async move {
            sender.send(Ok(Bytes::from_static(b"first"))).await.unwrap();
            first_seen.await.unwrap();
            sender
                .send(Ok(Bytes::from_static(b"second")))
                .await
                .unwrap();
        });
        let mut out = Coalesce::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
        let first = tokio::time::timeout(std::time::Duration::from_secs(10), out.next()).await;
        assert_eq!(first.unwrap(), Some(Ok(Bytes::from_static(b"first"))));
        passed_on.send(()).unwrap();
        assert_eq!(out.next().await, Some(Ok(Bytes::from_static(b"second"))));
        assert_eq!(out.next().await, None);
        producer.await.unwrap();
    }
}
