//! Rate limits (DESIGN §11): per client IP on login and register, per user
//! on chat POSTs. A client IP is counted by [`rate_key`]: an IPv6 client by
//! its /64. Each is a GCRA limiter from the `governor` crate keyed by
//! IP or user id: `per_minute` requests at once, refilled evenly over the
//! minute. A request over the limit gets 429 with `Retry-After`, the seconds
//! until one more would pass.
//!
//! Limits are per gateway process; several gateways each allow the full
//! rate. Idle keys are forgotten every minute, so memory follows the number
//! of recently active clients.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
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
    login: Limiter<IpAddr>,
    register: Limiter<IpAddr>,
    chat_posts: Limiter<String>,
    trust_forwarded_for: bool,
}

/// One keyed limiter; `None` when its rate is 0 (unlimited).
struct Limiter<K: Hash + Eq + Clone>(Option<DefaultKeyedRateLimiter<K>>);

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn per_minute(rate: u32) -> Self {
        Self(NonZeroU32::new(rate).map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n))))
    }

    fn check(&self, key: &K, what: &'static str) -> Result<(), GatewayError> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            GatewayError::RateLimited {
                what,
                retry_after: secs,
            }
        })
    }

    fn forget_idle(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings) -> Arc<Self> {
        let limits = Arc::new(Self {
            login: Limiter::per_minute(settings.login_per_minute),
            register: Limiter::per_minute(settings.register_per_minute),
            chat_posts: Limiter::per_minute(settings.chat_posts_per_minute),
            trust_forwarded_for: settings.trust_forwarded_for,
        });
        tokio::spawn(forget_idle_keys(Arc::downgrade(&limits)));
        limits
    }

    pub fn check_login(&self, req: &HttpRequest) -> Result<(), GatewayError> {
        self.login
            .check(&rate_key(self.client_ip(req)), "login attempts")
    }

    pub fn check_register(&self, req: &HttpRequest) -> Result<(), GatewayError> {
        self.register
            .check(&rate_key(self.client_ip(req)), "registrations")
    }

    pub fn check_chat_post(&self, user_id: &str) -> Result<(), GatewayError> {
        self.chat_posts.check(&user_id.to_owned(), "chat requests")
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

/// 60 s: a key idle that long is back at its full burst anyway.
async fn forget_idle_keys(limits: Weak<RateLimits>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(60));
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(limits) = limits.upgrade() else {
            return;
        };
        limits.login.forget_idle();
        limits.register.forget_idle();
        limits.chat_posts.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use confab_kit::Refusal;

    use super::*;

    #[tokio::test]
    async fn the_eleventh_attempt_in_a_minute_is_refused_with_retry_after() {
        let limiter = Limiter::per_minute(10);
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..10 {
            limiter.check(&ip, "attempts").unwrap();
        }
        let err = limiter.check(&ip, "attempts").unwrap_err();
        assert_eq!(err.status().as_u16(), 429);
        // Another client is not affected.
        limiter
            .check(&IpAddr::from([10, 0, 0, 2]), "attempts")
            .unwrap();
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

    #[test]
    fn a_rate_of_zero_is_unlimited() {
        let limiter = Limiter::<IpAddr>::per_minute(0);
        for _ in 0..1000 {
            limiter.check(&IpAddr::from([10, 0, 0, 1]), "x").unwrap();
        }
    }
}
