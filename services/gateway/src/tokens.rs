//! Access tokens: EdDSA (Ed25519) JWTs signed with keys kept in the database
//! and published at `/.well-known/jwks.json` (DESIGN §5).

use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use confab_kit::db::Db;
use confab_protocol::auth::{AccessClaims, Role};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use crate::store::keys::{self, SigningKeyRow};

/// A public key that verifies tokens.
struct PublicKey {
    kid: String,
    x: String,
    decoding: DecodingKey,
}

/// The signing key and every key that still verifies.
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<Inner>,
}

struct Inner {
    signing_kid: String,
    signing: EncodingKey,
    public: Vec<PublicKey>,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl KeyRing {
    /// Loads the keys, creating the first one on a fresh database.
    pub async fn load(
        db: &Db,
        issuer: &str,
        audience: &str,
        ttl_secs: i64,
    ) -> anyhow::Result<Self> {
        let mut rows = keys::all(db).await?;
        if !rows.iter().any(|k| k.active) {
            let row = generate()?;
            keys::insert(db, &row)
                .await
                .context("storing the first signing key")?;
            tracing::info!(kid = %row.kid, "created a signing key");
            rows.insert(0, row);
        }
        let active = rows
            .iter()
            .find(|k| k.active)
            .context("no active signing key")?;
        let der = STANDARD
            .decode(&active.private_key)
            .context("signing key is not base64")?;
        let public = rows
            .iter()
            .map(|row| {
                Ok(PublicKey {
                    kid: row.kid.clone(),
                    x: row.public_key.clone(),
                    decoding: DecodingKey::from_ed_components(&row.public_key)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                signing_kid: active.kid.clone(),
                signing: EncodingKey::from_ed_der(&der),
                public,
                issuer: issuer.to_owned(),
                audience: audience.to_owned(),
                ttl_secs,
            }),
        })
    }

    pub fn ttl_secs(&self) -> i64 {
        self.inner.ttl_secs
    }

    /// A signed access token for a user.
    pub fn issue(&self, user_id: &str, username: &str, role: Role) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            name: username.to_owned(),
            role,
            iat: now,
            exp: now + self.inner.ttl_secs,
            iss: self.inner.issuer.clone(),
            aud: self.inner.audience.clone(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.inner.signing_kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.inner.signing)?)
    }

    /// Verifies a token: EdDSA only, a known `kid`, a valid signature,
    /// not expired, our issuer and audience.
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA {
            return None;
        }
        let kid = header.kid?;
        let key = self.inner.public.iter().find(|k| k.kid == kid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.inner.issuer]);
        validation.set_audience(&[&self.inner.audience]);
        validation.leeway = 5;
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }

    /// The JWKS document of every verifying key.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .inner
            .public
            .iter()
            .map(|k| json!({"kty": "OKP", "crv": "Ed25519", "x": k.x, "kid": k.kid, "alg": "EdDSA", "use": "sig"}))
            .collect();
        json!({"keys": keys})
    }
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
    })
}
