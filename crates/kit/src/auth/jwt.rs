//! Verifying user access tokens against the gateway's JWKS (DESIGN §5).
//!
//! Keys are fetched from `jwks_url` when first needed and cached by `kid`; a
//! token with an unknown `kid` triggers a re-fetch (the gateway rotated its
//! key), at most once per [`REFETCH_INTERVAL`] so a flood of forged `kid`s
//! cannot turn into a flood of requests to the gateway. Only EdDSA is
//! accepted: `alg: none`, HS256 and every other algorithm are refused before
//! any key is looked at.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use confab_protocol::auth::AccessClaims;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use crate::error::ApiError;

/// 10 s: frequent enough to pick up a rotated key at once in practice, rare
/// enough that unknown `kid`s cannot hammer the gateway.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// Where the keys are and what a valid token must say.
#[derive(Debug, Clone, Deserialize)]
pub struct JwtSettings {
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
}

pub struct JwtVerifier {
    settings: JwtSettings,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: Mutex<Option<Instant>>,
}

impl JwtVerifier {
    pub fn new(settings: JwtSettings) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            settings,
            http,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
        }
    }

    /// The claims of a valid token, or 401.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
        let invalid = || ApiError::unauthorized("invalid or expired token");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid());
        }
        let kid = header.kid.ok_or_else(invalid)?;
        let key = match self.cached(&kid).await {
            Some(key) => key,
            None => {
                self.refresh().await;
                self.cached(&kid).await.ok_or_else(invalid)?
            }
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.leeway = 5;
        jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|_| invalid())
    }

    async fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().await.get(kid).cloned()
    }

    /// Re-reads the JWKS unless that happened less than [`REFETCH_INTERVAL`] ago.
    async fn refresh(&self) {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => *self.keys.write().await = keys,
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
