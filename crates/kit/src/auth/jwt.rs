//! Verifying user access tokens against the gateway's JWKS (DESIGN §5).
//!
//! Keys are fetched from `jwks_url` when first needed and cached by `kid`.
//! A token with an unknown `kid` makes the cache read the JWKS again (the
//! gateway rotated its key) through a [`RefetchGate`]: requests that arrive
//! together share one fetch, and fetches are at least [`REFETCH_INTERVAL`]
//! apart, so a flood of forged `kid`s cannot become a flood of requests to
//! the gateway. The cache is also read again once it is [`MAX_AGE`] old, so a
//! key the gateway withdrew stops verifying here too. What a valid token is
//! is [`TokenCheck`]'s to say, the same as in the gateway.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use confab_protocol::auth::AccessClaims;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use serde::Deserialize;
use tokio::sync::RwLock;
use tokio::time::Instant;

use super::{RefetchGate, Revocations, TokenCheck, revocations};
use crate::error::ApiError;

/// 1 s: a token signed with a freshly rotated key waits at most this long
/// for the new JWKS; forged `kid`s cost the gateway one JWKS read per second.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(1);

/// 5 min: the gateway serves its JWKS with `max-age=300`.
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// Where the keys are and what a valid token must say.
#[derive(Debug, Clone, Deserialize)]
pub struct JwtSettings {
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    /// The gateway's list of revoked users' tokens (see
    /// [`super::revocations`]); by default `/internal/revocations` on the
    /// JWKS URL's origin.
    #[serde(default)]
    pub revocations_url: Option<String>,
}

impl JwtSettings {
    /// [`Self::revocations_url`], or the one next to the JWKS.
    pub fn revocations_url(&self) -> Option<String> {
        if let Some(url) = &self.revocations_url {
            return Some(url.clone());
        }
        let mut url = reqwest::Url::parse(&self.jwks_url).ok()?;
        url.set_path("/internal/revocations");
        url.set_query(None);
        Some(url.to_string())
    }
}

struct Cached {
    keys: Arc<HashMap<String, DecodingKey>>,
    fetched_at: Option<Instant>,
}

pub struct JwtVerifier {
    settings: JwtSettings,
    http: reqwest::Client,
    cache: RwLock<Cached>,
    gate: RefetchGate,
    check: TokenCheck,
}

impl JwtVerifier {
    pub fn new(settings: JwtSettings) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            check: TokenCheck::new(
                &settings.issuer,
                &settings.audience,
                Arc::new(Revocations::default()),
            ),
            settings,
            http,
            cache: RwLock::new(Cached {
                keys: Arc::default(),
                fetched_at: None,
            }),
            gate: RefetchGate::new(REFETCH_INTERVAL),
        }
    }

    /// Starts reading the gateway's revocation list (with the service
    /// token), so that a disabled user's tokens stop working here too. A
    /// service without the URL (unparsable JWKS URL) logs why and goes on
    /// with expiry alone.
    pub fn watch_revocations(&self, service_token: &str) {
        match self.settings.revocations_url() {
            Some(url) => {
                revocations::watch(self.check.revocations(), url, service_token.to_owned())
            }
            None => tracing::warn!(
                jwks_url = %self.settings.jwks_url,
                "no revocation URL: tokens of disabled users stay valid until they expire"
            ),
        }
    }

    /// The claims of a valid token, or 401.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
        self.check
            .verify(token, |kid| async move { self.key(&kid).await })
            .await
            .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))
    }

    /// The key of `kid`, reading the JWKS again when it is unknown or the
    /// cache is stale.
    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        let now = Instant::now();
        let (keys, fresh) = {
            let cache = self.cache.read().await;
            let fresh = cache
                .fetched_at
                .is_some_and(|at| now.duration_since(at) < MAX_AGE);
            (cache.keys.clone(), fresh)
        };
        if fresh && let Some(key) = keys.get(kid) {
            return Some(key.clone());
        }
        self.gate.refetch(now, || self.refresh()).await;
        self.cache.read().await.keys.get(kid).cloned()
    }

    /// Replaces the cached keys; on failure the old ones stay.
    async fn refresh(&self) {
        match self.fetch().await {
            Ok(keys) => {
                *self.cache.write().await = Cached {
                    keys: Arc::new(keys),
                    fetched_at: Some(Instant::now()),
                }
            }
            Err(err) => {
                tracing::warn!(url = %self.settings.jwks_url, error = %format!("{err:#}"), "fetching the JWKS failed")
            }
        }
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, DecodingKey>> {
        let set: JwkSet = self
            .http
            .get(&self.settings.jwks_url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let is_ed25519 = matches!(
                &jwk.algorithm,
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519
            );
            if let (true, Some(kid)) = (is_ed25519, &jwk.common.key_id) {
                keys.insert(kid.clone(), DecodingKey::from_jwk(jwk)?);
            }
        }
        Ok(keys)
    }
}
