//! The routing table (DESIGN §6): public prefix → upstream + rewritten prefix.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use super::instances::{Upstream, UpstreamConfig};
use super::path::{RequestPath, push_segments};
use crate::api_keys::Scope;

/// One route as configured.
#[derive(Debug, Clone, Deserialize)]
pub struct RouteConfig {
    pub prefix: String,
    pub upstream: String,
    pub rewrite: String,
    #[serde(default)]
    pub inject_auth: bool,
    /// POSTs count against the per-user `chat_posts_per_minute` limit.
    #[serde(default)]
    pub rate_limited: bool,
    /// The API key scope the route needs (`chat`, the default, or `llm`);
    /// a key with `read` may GET any route.
    #[serde(default = "chat_scope")]
    pub scope: Scope,
    /// With `inject_auth`: whether a JSON body gets the identity as `_auth`
    /// too (the default), or the headers alone carry it, and the body goes
    /// as the client sent it (an upstream that forwards bodies to a third
    /// party, as llm-proxy-service does to a model's provider).
    #[serde(default = "yes")]
    pub body_auth: bool,
}

fn chat_scope() -> Scope {
    Scope::Chat
}

fn yes() -> bool {
    true
}

/// A route resolved against its upstream's instances.
#[derive(Debug, Clone)]
pub struct Route {
    /// Also the label of the route's requests in `/metrics`.
    pub prefix: Arc<str>,
    pub upstream: Upstream,
    pub rewrite: String,
    pub inject_auth: bool,
    pub rate_limited: bool,
    pub scope: Scope,
    pub body_auth: bool,
}

#[derive(Debug, Clone)]
pub struct RoutingTable {
    /// Longest prefix first, so the first match is the most specific.
    routes: Vec<Route>,
}

impl RoutingTable {
    /// The table of `configs` over `upstreams`; an instance that refused a
    /// connection is skipped for `retry_after` (see [`super::instances`]);
    /// the upstreams named in `http2` are called over HTTP/2.
    pub fn new(
        configs: &[RouteConfig],
        upstreams: &HashMap<String, UpstreamConfig>,
        retry_after: Duration,
        http2: &[String],
    ) -> anyhow::Result<Self> {
        for name in http2 {
            anyhow::ensure!(
                upstreams.contains_key(name),
                "proxy.http2 names unknown upstream '{name}'"
            );
        }
        // Every route to one upstream shares its `Upstream`: its turn, the
        // instances it skips, and in each worker their idle connections,
        // numbered across all upstreams.
        let mut named: HashMap<&str, Upstream> = HashMap::new();
        let mut instances = 0;
        let mut routes = Vec::with_capacity(configs.len());
        for c in configs {
            let config = upstreams.get(&c.upstream).with_context(|| {
                format!("route {} names unknown upstream '{}'", c.prefix, c.upstream)
            })?;
            anyhow::ensure!(
                c.prefix.starts_with('/'),
                "route prefix '{}' must start with /",
                c.prefix
            );
            anyhow::ensure!(
                c.scope != Scope::Read,
                "route {}: scope is chat or llm (a key with read may GET any route)",
                c.prefix
            );
            let upstream = match named.get(c.upstream.as_str()) {
                Some(upstream) => upstream.clone(),
                None => {
                    let upstream = Upstream::new(
                        &c.upstream,
                        config,
                        instances,
                        retry_after,
                        http2.contains(&c.upstream),
                    )?;
                    instances += upstream.instances().len();
                    named.insert(&c.upstream, upstream.clone());
                    upstream
                }
            };
            routes.push(Route {
                prefix: c.prefix.trim_end_matches('/').into(),
                upstream,
                rewrite: c.rewrite.trim_end_matches('/').to_owned(),
                inject_auth: c.inject_auth,
                rate_limited: c.rate_limited,
                scope: c.scope,
                body_auth: c.body_auth,
            });
        }
        routes.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then(a.prefix.cmp(&b.prefix))
        });
        if let Some(pair) = routes
            .windows(2)
            .find(|pair| pair[0].prefix == pair[1].prefix)
        {
            anyhow::bail!("the route prefix {} is configured twice", pair[0].prefix);
        }
        Ok(Self { routes })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for `path` and the upstream's path (with `query`) it maps
    /// to, in origin form. A prefix matches whole path segments only:
    /// `/api/v1/chat` matches `/api/v1/chat` and `/api/v1/chat/x`, not
    /// `/api/v1/chatter`. Prefixes are matched against the decoded path; the
    /// rest of it follows the rewritten prefix as segments encoded here
    /// (see [`super::path`]).
    pub fn resolve(&self, path: &RequestPath, query: &str) -> Option<(&Route, String)> {
        let path = path.as_str();
        let route = self.route_of(path)?;
        let rest = &path[route.prefix.len()..];
        let mut target = String::with_capacity(route.rewrite.len() + rest.len() + query.len() + 2);
        target.push_str(&route.rewrite);
        push_segments(&mut target, rest);
        if target.is_empty() {
            target.push('/');
        }
        if !query.is_empty() {
            target.push('?');
            target.push_str(query);
        }
        Some((route, target))
    }

    /// The route that takes `path` (decoded): the longest prefix that is
    /// the whole path or ends where one of its segments does.
    pub fn route_of(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|route| {
            path.strip_prefix(&*route.prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RoutingTable {
        let upstreams = HashMap::from([(
            "chat".to_owned(),
            UpstreamConfig::from("http://chat:8003/".to_owned()),
        )]);
        let route = |prefix: &str, rewrite: &str| RouteConfig {
            prefix: prefix.into(),
            upstream: "chat".into(),
            rewrite: rewrite.into(),
            inject_auth: true,
            rate_limited: false,
            scope: Scope::Chat,
            body_auth: true,
        };
        RoutingTable::new(
            &[
                route("/api/v1/chat", "/chat/unified"),
                route("/api/v1/chat/completions", "/chat/completions"),
                route("/api/v1/conversations", "/chat/conversations"),
            ],
            &upstreams,
            Duration::from_secs(5),
            &[],
        )
        .unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_the_rest_of_the_path_is_kept() {
        let table = table();
        let url = |path: &str, query: &str| {
            table
                .resolve(&RequestPath::parse(path).unwrap(), query)
                .map(|(route, target)| {
                    let instance = &route.upstream.instances()[0];
                    format!("{}{target}", instance.base_url)
                })
        };
        assert_eq!(
            url("/api/v1/chat", "").as_deref(),
            Some("http://chat:8003/chat/unified")
        );
        assert_eq!(
            url("/api/v1/chat/completions", "").as_deref(),
            Some("http://chat:8003/chat/completions")
        );
        assert_eq!(
            url("/api/v1/conversations/conv-1/messages", "limit=5").as_deref(),
            Some("http://chat:8003/chat/conversations/conv-1/messages?limit=5")
        );
        assert_eq!(url("/api/v1/chatter", ""), None);
        assert_eq!(url("/elsewhere", ""), None);
    }

    #[test]
    fn routes_to_one_upstream_share_its_instances_and_no_two_instances_share_a_pool() {
        let urls = |urls: &[&str]| {
            UpstreamConfig::from(urls.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>())
        };
        let upstreams = HashMap::from([
            ("chat".to_owned(), urls(&["http://a:1", "http://b:1"])),
            ("llm".to_owned(), urls(&["http://c:1", "http://d:1"])),
        ]);
        let route = |prefix: &str, upstream: &str| RouteConfig {
            prefix: prefix.into(),
            upstream: upstream.into(),
            rewrite: "/".into(),
            inject_auth: false,
            rate_limited: false,
            scope: Scope::Chat,
            body_auth: true,
        };
        let table = RoutingTable::new(
            &[
                route("/one", "chat"),
                route("/two", "chat"),
                route("/llm", "llm"),
            ],
            &upstreams,
            Duration::from_secs(5),
            &[],
        )
        .unwrap();
        let first_instance = |prefix: &str| {
            let path = RequestPath::parse(prefix).unwrap();
            let (route, _) = table.resolve(&path, "").unwrap();
            route
                .upstream
                .attempts()
                .next()
                .unwrap()
                .base_url
                .to_string()
        };
        // One turn for both routes to chat: a, then b, then a.
        assert_eq!(first_instance("/one"), "http://a:1");
        assert_eq!(first_instance("/two"), "http://b:1");
        assert_eq!(first_instance("/one"), "http://a:1");
        let mut ids: Vec<usize> = table
            .routes()
            .iter()
            .flat_map(|route| route.upstream.instances().iter().map(|i| i.id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids, [0, 1, 2, 3]);
    }

    #[test]
    fn a_route_or_an_http2_entry_naming_an_unknown_upstream_is_a_configuration_error() {
        let err = RoutingTable::new(
            &[RouteConfig {
                prefix: "/x".into(),
                upstream: "nowhere".into(),
                rewrite: "/y".into(),
                inject_auth: false,
                rate_limited: false,
                scope: Scope::Chat,
                body_auth: true,
            }],
            &HashMap::new(),
            Duration::from_secs(5),
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("nowhere"));
        let err = RoutingTable::new(
            &[],
            &HashMap::new(),
            Duration::from_secs(5),
            &["elsewhere".to_owned()],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("proxy.http2 names unknown upstream 'elsewhere'")
        );
    }
}
