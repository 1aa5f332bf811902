//! Access tokens: EdDSA (Ed25519) JWTs signed with keys kept in the database
//! and published at `/.well-known/jwks.json` (DESIGN §5).
//!
//! Rotation: one key signs; [`KeyRing::rotate`] stores a new one and retires
//! the old, which keeps verifying (and stays in the JWKS) for as long as a
//! token it signed can live, plus [`RETENTION_MARGIN`]. Several gateways may
//! share a database: each re-reads the keys every [`RELOAD_INTERVAL`], at
//! once (coalesced, at most once a second) when a token names a `kid` it does
//! not know, and before it answers its JWKS when its keys are older than a
//! second. That last read is what lets a key rotated on one gateway verify
//! everywhere within the services' JWKS refresh: a service that meets the
//! new `kid` fetches the JWKS again, maybe from another gateway, which must
//! not answer with the keys it read before the rotation.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use confab_kit::auth::{RefetchGate, Revocations, TokenCheck};
use confab_kit::db::Db;
use confab_protocol::auth::{AccessClaims, Role};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};

use crate::store::keys::{self, SigningKeyRow};

/// 60 s: how stale another gateway's rotation may be here.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// 10 min on top of the token lifetime: covers a gateway that signed with a
/// just-retired key until its next reload, and services caching the JWKS
/// for its `max-age` (5 min).
pub const RETENTION_MARGIN: Duration = Duration::from_secs(600);

/// A public key that verifies tokens.
struct PublicKey {
    x: String,
    decoding: DecodingKey,
}

/// The keys as last read from the database.
struct KeySet {
    signing_kid: String,
    signing: EncodingKey,
    public: HashMap<String, PublicKey>,
    /// `kid`s newest first, for a stable JWKS.
    order: Vec<String>,
}

/// The signing key and every key that still verifies.
pub struct KeyRing {
    db: Db,
    issuer: String,
    audience: String,
    ttl_secs: i64,
    current: RwLock<Arc<KeySet>>,
    gate: RefetchGate,
    check: TokenCheck,
}

impl KeyRing {
    /// Loads the keys, creating the first one on a fresh database, and
    /// re-reads them every [`RELOAD_INTERVAL`] while the ring is alive.
    pub async fn load(
        db: &Db,
        issuer: &str,
        audience: &str,
        ttl_secs: i64,
        revocations: Arc<Revocations>,
    ) -> anyhow::Result<Arc<Self>> {
        let mut set = read(db, ttl_secs).await?;
        if set.is_none() {
            let first = generate()?;
            if keys::insert_first(db, &first)
                .await
                .context("storing the first signing key")?
            {
                tracing::info!(kid = %first.kid, "created a signing key");
            }
            set = read(db, ttl_secs).await?;
        }
        let set = set.context("no active signing key")?;
        let ring = Arc::new(Self {
            db: db.clone(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs,
            current: RwLock::new(Arc::new(set)),
            gate: RefetchGate::new(Duration::from_secs(1)),
            check: TokenCheck::new(issuer, audience, revocations),
        });
        tokio::spawn(reload_periodically(Arc::downgrade(&ring)));
        Ok(ring)
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// The users whose tokens this ring refuses before they expire.
    pub fn revocations(&self) -> &Arc<Revocations> {
        self.check.revocations()
    }

    fn keys(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the keys; on failure the ones in use stay.
    async fn reload(&self) {
        match read(&self.db, self.ttl_secs).await {
            Ok(Some(set)) => {
                let mut current = match self.current.write() {
                    Ok(current) => current,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *current = Arc::new(set);
            }
            Ok(None) => tracing::warn!("the database has no active signing key"),
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "reloading signing keys failed")
            }
        }
    }

    /// A new signing key; the old one is retired but keeps verifying.
    pub async fn rotate(&self) -> anyhow::Result<String> {
        let new = generate()?;
        keys::rotate(&self.db, &new)
            .await
            .context("storing the new signing key")?;
        self.reload().await;
        tracing::info!(kid = %new.kid, "rotated the signing key");
        Ok(new.kid)
    }

    /// A signed access token for a user whose tokens up to `valid_after`
    /// (Unix seconds; see `crate::revocations`) are refused: it is dated a
    /// second past that when it falls in the same second, so it is valid.
    pub fn issue(
        &self,
        user_id: &str,
        username: &str,
        role: Role,
        valid_after: Option<i64>,
    ) -> anyhow::Result<String> {
        let keys = self.keys();
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            name: username.to_owned(),
            role,
            iat: valid_after.map_or(now, |after| now.max(after + 1)),
            exp: now + self.ttl_secs,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(keys.signing_kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &keys.signing)?)
    }

    /// Verifies a token (see [`TokenCheck`]) against the keys of this
    /// ring, read again once when its `kid` is unknown here.
    pub async fn verify(&self, token: &str) -> Option<AccessClaims> {
        self.check.verify(token, |kid| self.key(kid)).await
    }

    async fn key(&self, kid: String) -> Option<DecodingKey> {
        let known = |keys: Arc<KeySet>| keys.public.get(&kid).map(|k| k.decoding.clone());
        if let Some(key) = known(self.keys()) {
            return Some(key);
        }
        self.gate
            .refetch(tokio::time::Instant::now(), || self.reload())
            .await;
        known(self.keys())
    }

    /// The JWKS document of every verifying key, read again first unless
    /// a read started less than the refetch interval (1 s) ago: the JWKS is
    /// what other services read when they meet a `kid` they do not know,
    /// and the key may have been made by another gateway. Requests for it,
    /// however many, cost the database one read a second.
    pub async fn jwks(&self) -> Value {
        let now = tokio::time::Instant::now();
        let fresh_since = now.checked_sub(self.gate.min_interval()).unwrap_or(now);
        self.gate.refetch(fresh_since, || self.reload()).await;
        let keys = self.keys();
        let jwks: Vec<Value> = keys
            .order
            .iter()
            .filter_map(|kid| keys.public.get(kid).map(|k| (kid, k)))
            .map(|(kid, k)| json!({"kty": "OKP", "crv": "Ed25519", "x": k.x, "kid": kid, "alg": "EdDSA", "use": "sig"}))
            .collect();
        json!({"keys": jwks})
    }

    /// The verifying keys: `kid`, whether it signs, when it was made and
    /// retired (for the admin API).
    pub async fn describe(&self) -> anyhow::Result<Vec<SigningKeyRow>> {
        Ok(keys::verifying(&self.db, retention_start(self.ttl_secs)).await?)
    }
}

async fn reload_periodically(ring: Weak<KeyRing>) {
    let mut ticks = tokio::time::interval(RELOAD_INTERVAL);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match ring.upgrade() {
            Some(ring) => ring.reload().await,
            None => return,
        }
    }
}

/// Keys retired before this no longer verify: every token they signed has
/// expired.
fn retention_start(ttl_secs: i64) -> chrono::NaiveDateTime {
    let margin = chrono::Duration::from_std(RETENTION_MARGIN).unwrap_or_default();
    Utc::now().naive_utc() - chrono::Duration::seconds(ttl_secs) - margin
}

/// The verifying keys in the database; `None` when no key is active.
async fn read(db: &Db, ttl_secs: i64) -> anyhow::Result<Option<KeySet>> {
    let rows = keys::verifying(db, retention_start(ttl_secs))
        .await
        .context("reading signing keys")?;
    let Some(active) = rows.iter().find(|k| k.active) else {
        return Ok(None);
    };
    let der = STANDARD
        .decode(&active.private_key)
        .context("signing key is not base64")?;
    let mut public = HashMap::new();
    for row in &rows {
        public.insert(
            row.kid.clone(),
            PublicKey {
                x: row.public_key.clone(),
                decoding: DecodingKey::from_ed_components(&row.public_key)?,
            },
        );
    }
    Ok(Some(KeySet {
        signing_kid: active.kid.clone(),
        signing: EncodingKey::from_ed_der(&der),
        public,
        order: rows.iter().map(|r| r.kid.clone()).collect(),
    }))
}

/// A new Ed25519 key from the OS random source.
fn generate() -> anyhow::Result<SigningKeyRow> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let der = key
        .to_pkcs8_der()
        .map_err(|e| anyhow::anyhow!("encoding the signing key: {e}"))?;
    Ok(SigningKeyRow {
        kid: confab_kit::ids::new_id("key"),
        private_key: STANDARD.encode(der.as_bytes()),
        public_key: URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()),
        active: true,
        created_at: Utc::now().naive_utc(),
        retired_at: None,
    })
}
