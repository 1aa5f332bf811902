//! An HTTP client per thread, for calls whose replies stream back to the
//! thread that made them.
//!
//! A `reqwest::Client` reads each of its pooled connections in a task on the
//! runtime that opened the connection. An actix service runs one runtime
//! per worker thread, so with one client shared by every worker, a call made
//! on worker B over a connection worker A opened has each chunk of its reply
//! read on A and handed over to B: a thread wake-up per chunk, and chunks
//! that pile up while B waits for a CPU. `infra/bench/gateway.sh` measured it
//! on chat-service's calls to agents: on one worker the first event of a
//! turn left chat-service after 1.34 ms (p50), with the shared client on two
//! workers after 1.70 ms, and a stream in 5.4 writes instead of 8 on the
//! connections of the worker that did not own the agent connection. With a
//! client per thread a call always goes over a connection of its own
//! thread.

use std::sync::Arc;

use thread_local::ThreadLocal;

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
