//! Rate limits (DESIGN §11, §14): per client IP on login and register, per
//! user on chat POSTs. A client IP is counted by [`rate_key`]: an IPv6
//! client by its /64. Each limit is a [`Rate`]: `per_minute` requests at
//! once, refilled evenly over the minute. A request over the limit gets 429
//! with `Retry-After`, the seconds until one more would pass.
//!
//! The limits hold across every gateway instance (DESIGN §15): their state
//! is in the bus buckets `gateway-rate-login`, `gateway-rate-register` and
//! `gateway-rate-chat-posts` (one entry per client, kept a minute after its
//! last request), so the 11th login a minute from one IP is refused
//! whichever instances served the ten. A check is one bus read, and one
//! write when it passes. In process (no `[bus] url`) the same buckets live
//! in the process.
//!
//! A limit that cannot be checked because the bus is unreachable lets the
//! request through, logged and counted in
//! `gateway_rate_limit_unchecked_total{limit}`: a bus outage must not stop
//! every login and every chat message on every instance, `/ready` already
//! fails so a load balancer moves traffic away, and logins stay bounded by
//! `[limits] password_hashes` meanwhile. The check waits at most `[bus]
//! timeout_secs` for the bus.

use std::net::{IpAddr, Ipv6Addr};

use actix_web::HttpRequest;
use confab_kit::bus::{Bus, BusError, escape_token};
use confab_kit::rate::{Rate, Verdict};
use serde::Deserialize;

use crate::error::GatewayError;

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    /// Login attempts per client IP per minute.
    pub login_per_minute: u32,
    /// Registrations per client IP per minute.
    pub register_per_minute: u32,
    /// POSTs per user per minute on routes marked `rate_limited`.
    pub chat_posts_per_minute: u32,
    /// Take the client IP from the last `X-Forwarded-For` entry, as a
    /// trusted reverse proxy in front of the gateway appends it. Off by
    /// default: a client could otherwise pick its own IP.
    pub trust_forwarded_for: bool,
}

pub struct RateLimits {
    login: Limit,
    register: Limit,
    chat_posts: Limit,
    trust_forwarded_for: bool,
}

/// One limit: its name (in bucket names and metrics), what the client is
/// told it spent, and its rate (`None`: unlimited).
struct Limit {
    name: &'static str,
    what: &'static str,
    rate: Option<Rate>,
}

impl Limit {
    async fn open(
        bus: &Bus,
        name: &'static str,
        what: &'static str,
        per_minute: u32,
    ) -> Result<Self, BusError> {
        let bucket = format!("gateway-rate-{}", name.replace('_', "-"));
        Ok(Self {
            name,
            what,
            rate: Rate::per_minute(bus, &bucket, per_minute).await?,
        })
    }

    async fn check(&self, client: Client<'_>) -> Result<(), GatewayError> {
        let Some(rate) = &self.rate else {
            return Ok(());
        };
        match rate.check(&client.key()).await {
            Ok(Verdict::Allowed) => Ok(()),
            Ok(Verdict::Refused { retry_after }) => Err(GatewayError::RateLimited {
                what: self.what,
                retry_after,
            }),
            Err(err) => {
                tracing::warn!(error = %err, limit = self.name, "the rate limit could not be checked; the request goes through");
                metrics::counter!("gateway_rate_limit_unchecked_total", "limit" => self.name)
                    .increment(1);
                Ok(())
            }
        }
    }
}

/// Who a request is counted against.
#[derive(Debug, Clone, Copy)]
pub enum Client<'a> {
    /// A signed-in user, by id.
    User(&'a str),
    /// Anyone else, by IP ([`rate_key`]).
    Ip(IpAddr),
}

impl Client<'_> {
    /// The client's key in a limit's bucket: `user.<id>` or `ip.<address>`,
    /// escaped into a valid key (an IPv4 address's dots become `-`).
    fn key(&self) -> String {
        match self {
            Client::User(id) => format!("user.{}", escape_token(id)),
            Client::Ip(ip) => format!("ip.{}", rate_key(*ip).to_string().replace('.', "-")),
        }
    }
}

impl RateLimits {
    /// The limits of `settings`, counted in `bus`'s buckets.
    pub async fn open(bus: &Bus, settings: &RateLimitSettings) -> Result<Self, BusError> {
        Ok(Self {
            login: Limit::open(bus, "login", "login attempts", settings.login_per_minute).await?,
            register: Limit::open(
                bus,
                "register",
                "registrations",
                settings.register_per_minute,
            )
            .await?,
            chat_posts: Limit::open(
                bus,
                "chat_posts",
                "chat requests",
                settings.chat_posts_per_minute,
            )
            .await?,
            trust_forwarded_for: settings.trust_forwarded_for,
        })
    }

    pub async fn check_login(&self, req: &HttpRequest) -> Result<(), GatewayError> {
        self.login.check(Client::Ip(self.client_ip(req))).await
    }

    pub async fn check_register(&self, req: &HttpRequest) -> Result<(), GatewayError> {
        self.register.check(Client::Ip(self.client_ip(req))).await
    }

    pub async fn check_chat_post(&self, client: Client<'_>) -> Result<(), GatewayError> {
        self.chat_posts.check(client).await
    }

    /// The client's IP: the peer, or with `trust_forwarded_for` the last
    /// `X-Forwarded-For` entry.
    pub fn client_ip(&self, req: &HttpRequest) -> IpAddr {
        let forwarded = self
            .trust_forwarded_for
            .then(|| confab_kit::auth::header(req, "x-forwarded-for"))
            .flatten()
            .and_then(|list| list.rsplit(',').next())
            .and_then(|ip| ip.trim().parse().ok());
        forwarded
            .or_else(|| req.peer_addr().map(|peer| peer.ip()))
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }
}

/// What a client IP is limited under. IPv4 (and IPv4-mapped IPv6, as a
/// dual-stack listener reports IPv4 peers) per address; IPv6 per /64: that
/// is the smallest block a subscriber is given, and one host can pick any
/// address in it (privacy addresses do), so per address it would get 2^64
/// allowances instead of one.
pub fn rate_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX)))),
        },
    }
}

#[cfg(test)]
mod tests {
    use confab_kit::Refusal;

    use super::*;

    async fn limit(per_minute: u32) -> Limit {
        Limit::open(&Bus::in_process(), "login", "attempts", per_minute)
            .await
            .unwrap()
    }

    fn ip(text: &str) -> Client<'static> {
        Client::Ip(text.parse().unwrap())
    }

    #[tokio::test]
    async fn the_eleventh_attempt_in_a_minute_is_refused_with_retry_after() {
        let limit = limit(10).await;
        for _ in 0..10 {
            limit.check(ip("10.0.0.1")).await.unwrap();
        }
        let err = limit.check(ip("10.0.0.1")).await.unwrap_err();
        assert_eq!(err.status().as_u16(), 429);
        assert!((1..=6).contains(&err.retry_after().unwrap()), "{err}");
        // Another client is not affected.
        limit.check(ip("10.0.0.2")).await.unwrap();
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_ipv4_by_address() {
        let key = |ip: &str| rate_key(ip.parse().unwrap()).to_string();
        // One /64, whatever the interface id.
        for ip in [
            "2001:db8:1:2::1",
            "2001:db8:1:2:ffff:ffff:ffff:ffff",
            "2001:db8:1:2:a:b:c:d",
        ] {
            assert_eq!(key(ip), "2001:db8:1:2::", "{ip}");
        }
        // The next /64 is another client.
        assert_eq!(key("2001:db8:1:3::1"), "2001:db8:1:3::");
        // IPv4, plain or mapped, per address.
        assert_eq!(key("10.0.0.1"), "10.0.0.1");
        assert_eq!(key("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(key("10.0.0.2"), "10.0.0.2");
    }

    #[tokio::test]
    async fn every_kind_of_client_is_counted_under_a_key_of_its_own() {
        let limit = limit(1).await;
        let clients = [
            ip("10.0.0.1"),
            ip("::ffff:10.0.0.2"),
            ip("2001:db8:1:2::1"),
            ip("::"),
            Client::User("usr-1"),
            // A user id that looks like an address is still a user.
            Client::User("10.0.0.1"),
            Client::User("an id with spaces.and dots"),
        ];
        // Each key is valid on the bus and its own: one passes, the next
        // of the same client is refused.
        for client in clients {
            limit.check(client).await.unwrap();
        }
        for client in clients {
            assert!(limit.check(client).await.is_err(), "{client:?}");
        }
    }

    #[tokio::test]
    async fn a_rate_of_zero_is_unlimited() {
        let limit = limit(0).await;
        for _ in 0..1000 {
            limit.check(ip("10.0.0.1")).await.unwrap();
        }
    }
}
