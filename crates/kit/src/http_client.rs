//! An HTTP client per thread, for calls whose replies stream back to the
//! thread that made them.
//!
//! A `reqwest::Client` reads each of its pooled connections in a task on the
//! runtime that opened the connection, and an actix service runs one runtime
//! per worker thread: with one shared client, a reply could be read on
//! another worker's thread and handed over chunk by chunk. With a client per
//! thread a call always goes over a connection of its own thread (figures:
//! `infra/bench/README.md`).

use std::sync::Arc;
use std::time::Duration;

use thread_local::ThreadLocal;

/// How long a client keeps an idle connection to another Confab service:
/// less than the 5 s after which the service's actix server closes an idle
/// keep-alive connection, so a request never goes out on a connection the
/// server is closing at that moment (it would fail with "connection closed
/// before message completed").
pub const SERVICE_POOL_IDLE: Duration = Duration::from_secs(4);

/// Cheap to clone: clones share the clients.
#[derive(Clone)]
pub struct PerThreadClient(Arc<Clients>);

struct Clients {
    build: Box<dyn Fn() -> reqwest::Result<reqwest::Client> + Send + Sync>,
    /// Built up front, so a bad configuration fails at start-up; also what a
    /// thread uses should building its own fail later.
    first: reqwest::Client,
    by_thread: ThreadLocal<reqwest::Client>,
}

impl PerThreadClient {
    /// Clients made by `builder`, called now and once per calling thread.
    pub fn new(
        builder: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> reqwest::Result<Self> {
        let first = builder().build()?;
        Ok(Self(Arc::new(Clients {
            build: Box::new(move || builder().build()),
            first,
            by_thread: ThreadLocal::new(),
        })))
    }

    /// The calling thread's client.
    pub fn get(&self) -> &reqwest::Client {
        let clients = &*self.0;
        clients.by_thread.get_or(|| {
            (clients.build)().unwrap_or_else(|err| {
                tracing::warn!(error = %err, "building this thread's HTTP client failed; sharing the first");
                clients.first.clone()
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_gets_its_own_client_and_keeps_it() {
        let clients = PerThreadClient::new(reqwest::Client::builder).unwrap();
        let here = std::ptr::from_ref(clients.get());
        assert_eq!(std::ptr::from_ref(clients.get()), here);
        let other = std::thread::spawn({
            let clients = clients.clone();
            move || std::ptr::from_ref(clients.get()) as usize
        })
        .join()
        .unwrap();
        assert_ne!(other, here as usize);
    }
}
