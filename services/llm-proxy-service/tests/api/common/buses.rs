//! The buses a test runs on: in process always, and NATS JetStream too when
//! `CONFAB_TEST_NATS_URL` names a server (CI sets it), each run in a
//! namespace of its own whose streams it removes at the end.

use std::future::Future;
use std::time::Duration;

use confab_kit::bus::{Bus, NatsBus, TEST_NATS_ENV};
use llm_proxy_service::Settings;

/// Where a test's instances meet.
#[derive(Clone)]
pub enum TestBus {
    /// One in-process bus, which every instance the test starts in this
    /// process shares (as instances share a NATS server).
    Local(Bus),
    Nats {
        url: String,
        namespace: String,
    },
}

impl TestBus {
    /// The bus a restarted process has: a new one in process, the same
    /// NATS server.
    pub fn after_restart(&self) -> Self {
        match self {
            Self::Local(_) => Self::Local(Bus::in_process()),
            nats => nats.clone(),
        }
    }

    pub fn is_nats(&self) -> bool {
        matches!(self, Self::Nats { .. })
    }

    /// The `CONFAB__BUS__…` variables of a binary on this bus (none in
    /// process: such a process has a bus of its own).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Local(_) => Vec::new(),
            Self::Nats { url, namespace } => vec![
                ("CONFAB__BUS__URL", url.clone()),
                ("CONFAB__BUS__NAMESPACE", namespace.clone()),
            ],
        }
    }

    /// Starts the service of `settings` on this bus.
    pub async fn build(&self, mut settings: Settings) -> confab_kit::server::Running {
        match self {
            Self::Local(bus) => llm_proxy_service::build_on(settings, bus.clone())
                .await
                .unwrap(),
            Self::Nats { url, namespace } => {
                settings.bus.url = Some(url.clone());
                settings.bus.namespace = namespace.clone();
                llm_proxy_service::build(settings).await.unwrap()
            }
        }
    }
}

/// Runs `test` in process, then on NATS if a server is named.
pub async fn on_both_buses<F, Fut>(test: F)
where
    F: Fn(TestBus) -> Fut,
    Fut: Future<Output = ()>,
{
    test(TestBus::Local(Bus::in_process())).await;
    if let Ok(url) = std::env::var(TEST_NATS_ENV) {
        let namespace = Namespace {
            url,
            name: format!("t{}", uuid::Uuid::new_v4().simple()),
        };
        test(TestBus::Nats {
            url: namespace.url.clone(),
            namespace: namespace.name.clone(),
        })
        .await;
    }
}

/// A test's namespace on the test NATS server, whose streams go when it
/// does, whether the test passed or not.
struct Namespace {
    url: String,
    name: String,
}

impl Drop for Namespace {
    /// On a thread of its own: a drop cannot wait, and the test's runtime
    /// may be unwinding.
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let removed = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let bus = NatsBus::connect(&url, &name, Duration::from_secs(5)).await?;
                bus.remove_namespace().await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(removed, Ok(Ok(()))) {
            eprintln!(
                "the streams of test namespace {} were not removed: {removed:?}",
                self.name
            );
        }
    }
}
