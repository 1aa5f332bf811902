//! An upstream's instances (DESIGN §15): requests spread over them in turn,
//! and an instance that refused a connection is skipped for a while.
//!
//! An upstream names one URL or several (`urls`, see [`UpstreamConfig`]).
//! Each request starts at the next instance in turn (one shared atomic
//! counter per upstream; none at all for an upstream of one instance) and
//! goes round the list from there: instances that refused a connection
//! within the last `[timeouts] instance_retry_secs` come after the others,
//! so a request only fails when every instance has refused it. A refused
//! connection sent nothing, so the next instance may take the request,
//! even a POST. Once its time is up a skipped instance takes its turn
//! again, and the first connection it accepts makes it live for everyone.
//!
//! The state is shared by every worker and every route to the upstream:
//! one worker's refusal spares the others the same attempt. In the common
//! case (nothing skipped) a request reads one atomic per instance it
//! passes and never the clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;

/// An upstream as configured: `"http://chat:8003"`, several URLs in one
/// string separated by commas (`"http://a:8003,http://b:8003"`, the form
/// an environment variable can give), or a table
/// `{ urls = ["http://a:8003", "http://b:8003"] }`. One URL is an upstream
/// of one instance, whichever form names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    pub urls: Vec<String>,
}

impl From<String> for UpstreamConfig {
    /// One URL, or several separated by commas.
    fn from(urls: String) -> Self {
        Self {
            urls: urls
                .split(',')
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

impl From<Vec<String>> for UpstreamConfig {
    fn from(urls: Vec<String>) -> Self {
        Self { urls }
    }
}

impl<'de> Deserialize<'de> for UpstreamConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Urls {
            List(Vec<String>),
            Joined(String),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Joined(String),
            Table { urls: Urls },
        }
        Ok(match Form::deserialize(deserializer)? {
            Form::Joined(urls)
            | Form::Table {
                urls: Urls::Joined(urls),
            } => urls.into(),
            Form::Table {
                urls: Urls::List(urls),
            } => urls.into(),
        })
    }
}

/// One instance of an upstream: where its requests connect.
#[derive(Debug)]
pub struct Instance {
    /// Index of the instance among every upstream's instances: its idle
    /// connections' place in each worker's pool.
    pub id: usize,
    /// `scheme://host[:port]`, for WebSocket URLs and the logs.
    pub base_url: Arc<str>,
    /// `scheme://host:port/`, what the connector dials.
    pub origin: hyper::Uri,
    /// The `Host` header of requests to it.
    pub host: hyper::header::HeaderValue,
    /// Milliseconds after the upstream's epoch until which the instance is
    /// skipped, since it refused a connection; 0 while it is live.
    refused_until: AtomicU64,
}

impl Instance {
    /// The instance at `base` (`scheme://host[:port]/`).
    fn new(id: usize, base: &reqwest::Url) -> anyhow::Result<Self> {
        let host = base.host_str().context("no host")?;
        let authority = match base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let base_url = format!("{}://{authority}", base.scheme());
        Ok(Self {
            id,
            origin: hyper::Uri::try_from(format!("{base_url}/"))?,
            base_url: base_url.into(),
            host: hyper::header::HeaderValue::try_from(authority)?,
            refused_until: AtomicU64::new(0),
        })
    }
}

/// An upstream: its instances and whose turn is next. Clones share the
/// state (every route to one upstream holds the same).
#[derive(Debug, Clone)]
pub struct Upstream(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    name: Arc<str>,
    instances: Box<[Instance]>,
    next: AtomicUsize,
    /// How long an instance that refused a connection is skipped.
    retry_after_ms: u64,
    /// What `refused_until` counts from.
    epoch: Instant,
    /// Whether the instances are called over HTTP/2 by prior knowledge
    /// (`[proxy] http2`).
    http2: bool,
}

impl Upstream {
    /// The upstream `name` at `config`'s URLs, its instances numbered from
    /// `first_id` on, called over HTTP/2 by prior knowledge if `http2`.
    pub fn new(
        name: &str,
        config: &UpstreamConfig,
        first_id: usize,
        retry_after: Duration,
        http2: bool,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!config.urls.is_empty(), "upstream '{name}' names no URL");
        let mut instances = Vec::with_capacity(config.urls.len());
        for (n, url) in config.urls.iter().enumerate() {
            let base = reqwest::Url::parse(url)
                .with_context(|| format!("upstream '{name}' has an invalid URL {url:?}"))?;
            anyhow::ensure!(
                matches!(base.scheme(), "http" | "https") && base.path() == "/",
                "upstream '{name}' must be an http(s) URL without a path, not {url:?}"
            );
            let instance = Instance::new(first_id + n, &base)
                .with_context(|| format!("upstream '{name}' has an invalid URL {url:?}"))?;
            anyhow::ensure!(
                !instances
                    .iter()
                    .any(|known: &Instance| known.base_url == instance.base_url),
                "upstream '{name}' names {} twice",
                instance.base_url
            );
            instances.push(instance);
        }
        Ok(Self(Arc::new(Shared {
            name: name.into(),
            instances: instances.into(),
            next: AtomicUsize::new(0),
            retry_after_ms: u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
            epoch: Instant::now(),
            http2,
        })))
    }

    pub fn name(&self) -> &Arc<str> {
        &self.0.name
    }

    /// Whether requests go to it over HTTP/2 (by prior knowledge).
    pub fn http2(&self) -> bool {
        self.0.http2
    }

    pub fn instances(&self) -> &[Instance] {
        &self.0.instances
    }

    /// The instances one request tries, in order: from the next in turn
    /// round the list, the live ones first, then those being skipped.
    pub fn attempts(&self) -> Attempts<'_> {
        let count = self.0.instances.len();
        let start = match count {
            1 => 0,
            _ => self.0.next.fetch_add(1, Ordering::Relaxed) % count,
        };
        Attempts {
            shared: &self.0,
            start,
            step: 0,
            now_ms: None,
            skipped: Vec::new(),
        }
    }

    /// `instance` refused a connection (`reason`, added to the request's
    /// `refusals`): skip it for the retry time. Said in the log when a live
    /// instance starts being skipped.
    pub fn refused(&self, instance: &Instance, reason: &str, refusals: &mut Refusals) {
        refusals.0.push(format!("{}: {reason}", instance.base_url));
        let shared = &self.0;
        let until = shared.now_ms().saturating_add(shared.retry_after_ms).max(1);
        let before = instance.refused_until.swap(until, Ordering::Relaxed);
        metrics::counter!(
            "gateway_upstream_connect_failures_total",
            "upstream" => shared.name.to_string(),
            "instance" => instance.base_url.to_string(),
        )
        .increment(1);
        if before == 0 {
            tracing::warn!(
                upstream = %shared.name,
                instance = %instance.base_url,
                reason,
                retry_after_ms = shared.retry_after_ms,
                "an upstream instance refused a connection; skipping it"
            );
        }
    }

    /// `instance` accepted a connection: live again, if it was skipped.
    pub fn connected(&self, instance: &Instance) {
        // Read first: a write on every new connection would bounce the
        // cache line between workers for nothing.
        if instance.refused_until.load(Ordering::Relaxed) != 0 {
            instance.refused_until.store(0, Ordering::Relaxed);
            tracing::info!(
                upstream = %self.0.name,
                instance = %instance.base_url,
                "an upstream instance accepts connections again"
            );
        }
    }
}

/// The instances that refused one request's connections, and why: what its
/// failure's log line says.
#[derive(Debug, Default)]
pub struct Refusals(Vec<String>);

impl std::fmt::Display for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The instances one request tries (see [`Upstream::attempts`]).
pub struct Attempts<'a> {
    shared: &'a Shared,
    start: usize,
    /// How far round the list the first pass is.
    step: usize,
    /// The clock, read once and only when an instance is being skipped.
    now_ms: Option<u64>,
    /// Instances the first pass passed over, tried after it in that order.
    /// Empty (no allocation) while nothing is skipped.
    skipped: Vec<usize>,
}

impl<'a> Iterator for Attempts<'a> {
    type Item = &'a Instance;

    fn next(&mut self) -> Option<&'a Instance> {
        let instances = &self.shared.instances;
        while self.step < instances.len() {
            let index = (self.start + self.step) % instances.len();
            self.step += 1;
            let instance = &instances[index];
            let until = instance.refused_until.load(Ordering::Relaxed);
            if until == 0 || until <= *self.now_ms.get_or_insert_with(|| self.shared.now_ms()) {
                return Some(instance);
            }
            self.skipped.push(index);
        }
        if self.skipped.is_empty() {
            return None;
        }
        Some(&instances[self.skipped.remove(0)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(urls: &[&str], retry_after: Duration) -> Upstream {
        let config =
            UpstreamConfig::from(urls.iter().map(|url| (*url).to_owned()).collect::<Vec<_>>());
        Upstream::new("chat", &config, 0, retry_after, false).unwrap()
    }

    fn order(upstream: &Upstream) -> Vec<&str> {
        upstream
            .attempts()
            .map(|instance| &*instance.base_url)
            .collect()
    }

    const A: &str = "http://a:1";
    const B: &str = "http://b:1";
    const C: &str = "http://c:1";

    #[test]
    fn each_request_starts_at_the_next_instance_and_tries_every_one() {
        let upstream = upstream(&[A, B, C], Duration::from_secs(5));
        assert_eq!(order(&upstream), [A, B, C]);
        assert_eq!(order(&upstream), [B, C, A]);
        assert_eq!(order(&upstream), [C, A, B]);
        assert_eq!(order(&upstream), [A, B, C]);
    }

    #[test]
    fn a_refusing_instance_is_tried_last_until_its_time_is_up_or_it_connects() {
        let upstream = upstream(&[A, B, C], Duration::from_secs(3600));
        let b = &upstream.instances()[1];
        upstream.refused(b, "connection refused", &mut Refusals::default());
        assert_eq!(order(&upstream), [A, C, B]);
        assert_eq!(order(&upstream), [C, A, B]);
        assert_eq!(order(&upstream), [C, A, B]);
        upstream.connected(b);
        assert_eq!(order(&upstream), [A, B, C]);

        let at_once = self::upstream(&[A, B], Duration::ZERO);
        at_once.refused(
            &at_once.instances()[0],
            "connection refused",
            &mut Refusals::default(),
        );
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(order(&at_once), [A, B], "a retry time of 0 never skips");
    }

    #[test]
    fn every_form_of_an_upstream_names_its_urls() {
        #[derive(Deserialize)]
        struct Upstreams {
            upstreams: std::collections::BTreeMap<String, UpstreamConfig>,
        }
        let parsed: Upstreams = toml_like(
            r#"
            [upstreams]
            one = "http://a:1"
            joined = "http://a:1, http://b:1"
            table = { urls = ["http://a:1", "http://b:1"] }
            single = { urls = ["http://a:1"] }
            table_joined = { urls = "http://a:1,http://b:1" }
            "#,
        );
        let urls = |name: &str| parsed.upstreams[name].urls.clone();
        assert_eq!(urls("one"), [A]);
        for name in ["joined", "table", "table_joined"] {
            assert_eq!(urls(name), [A, B], "{name}");
        }
        assert_eq!(parsed.upstreams["single"], parsed.upstreams["one"]);
    }

    #[test]
    fn the_environment_names_one_instance_or_several_over_any_form() {
        use confab_kit::settings::{ServiceSettings, load_from};
        let settings = |file: Option<&str>, env: &[(&str, &str)]| -> crate::Settings {
            let path = file.map(|text| {
                let path = std::env::temp_dir().join(format!(
                    "{}.toml",
                    confab_kit::ids::new_id("gateway-settings")
                ));
                std::fs::write(&path, text).unwrap();
                path
            });
            let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
            let loaded = load_from(crate::Settings::DEFAULTS, path.clone(), env).unwrap();
            if let Some(path) = path {
                std::fs::remove_file(path).unwrap();
            }
            loaded
        };
        let chat = |s: &crate::Settings| s.upstreams["chat"].urls.clone();

        let defaults = settings(None, &[]);
        assert_eq!(chat(&defaults), ["http://127.0.0.1:8003"]);
        assert_eq!(defaults.timeouts.instance_retry_secs, 5);
        let joined = settings(
            None,
            &[("CONFAB__UPSTREAMS__CHAT", "http://a:1,http://b:1")],
        );
        assert_eq!(chat(&joined), [A, B]);
        let table = r#"[upstreams]
            chat = { urls = ["http://a:1", "http://b:1"] }"#;
        assert_eq!(chat(&settings(Some(table), &[])), [A, B]);
        // A variable replaces whatever form the file used, and may name
        // `urls` itself.
        let replaced = settings(Some(table), &[("CONFAB__UPSTREAMS__CHAT", "http://c:1")]);
        assert_eq!(chat(&replaced), [C]);
        let urls = settings(
            None,
            &[("CONFAB__UPSTREAMS__CHAT__URLS", "http://b:1,http://c:1")],
        );
        assert_eq!(chat(&urls), [B, C]);
    }

    #[test]
    fn an_upstream_with_no_url_or_one_url_twice_is_refused() {
        let none = Upstream::new(
            "chat",
            &UpstreamConfig::from(String::new()),
            0,
            Duration::ZERO,
            false,
        );
        assert!(none.unwrap_err().to_string().contains("names no URL"));
        let twice = Upstream::new(
            "chat",
            &UpstreamConfig::from(format!("{A},{A}/")),
            0,
            Duration::ZERO,
            false,
        );
        assert!(twice.unwrap_err().to_string().contains("twice"));
    }

    fn toml_like<T: serde::de::DeserializeOwned>(text: &str) -> T {
        confab_kit::settings::load_from(text, None, []).unwrap()
    }
}
