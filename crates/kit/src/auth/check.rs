//! The one check of an access token, wherever its keys come from (the
//! gateway's key ring, or another service's copy of the gateway's JWKS).
//!
//! EdDSA only: `alg: none`, HS256 and every other algorithm are refused
//! before any key is looked at. The token must name a `kid` that the key
//! source knows, carry a valid signature, our issuer and audience, and not
//! be expired ([`LEEWAY_SECS`] of clock skew allowed), and its user must not
//! have had her tokens revoked since it was issued ([`Revocations`], checked
//! on every use, the cached ones included). A token that passed is
//! remembered ([`VerifiedTokens`]) until its `exp`.

use std::future::Future;
use std::sync::Arc;

use confab_protocol::auth::AccessClaims;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::verified::LEEWAY_SECS;
use super::{Revocations, VerifiedTokens};

pub struct TokenCheck {
    validation: Validation,
    verified: VerifiedTokens,
    revocations: Arc<Revocations>,
}

impl TokenCheck {
    pub fn new(issuer: &str, audience: &str, revocations: Arc<Revocations>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS.unsigned_abs();
        Self {
            validation,
            verified: VerifiedTokens::default(),
            revocations,
        }
    }

    /// The users whose tokens are refused before they expire.
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    /// The claims of a valid token; `key_for` finds the key of a `kid`
    /// (and may read its source again when the `kid` is new).
    pub async fn verify<F, Fut>(&self, token: &str, key_for: F) -> Option<AccessClaims>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Option<DecodingKey>>,
    {
        if let Some(claims) = self.verified.get(token) {
            return (!self.revocations.refuses(&claims)).then_some(claims);
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA {
            return None;
        }
        let key = key_for(header.kid?).await?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation)
            .ok()?
            .claims;
        if self.revocations.refuses(&claims) {
            return None;
        }
        self.verified.insert(token, &claims);
        Some(claims)
    }
}
