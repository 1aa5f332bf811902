//! Access tokens already verified, so the next request carrying the same
//! token skips the Ed25519 signature check.
//!
//! A client sends one token for up to 30 minutes, and checking its
//! signature is the largest single cost of a proxied request
//! (`infra/bench/README.md`). The cache is keyed by the
//! whole token, signature included, so any change to a token misses it; an
//! entry is used only until the token's `exp` (plus the same 5 s leeway the
//! full check allows), so caching never extends a token's life. Tokens
//! whose signing key is withdrawn early stay accepted until they expire, as
//! they would in any service that cached the JWKS.

use confab_protocol::auth::AccessClaims;
use quick_cache::sync::Cache;

/// 10,000 tokens, a few MiB: the active users of one instance.
pub const CAPACITY: usize = 10_000;

/// Seconds a token is still accepted after its `exp` (clock skew), here and
/// in the full check ([`super::TokenCheck`]).
pub const LEEWAY_SECS: i64 = 5;

pub struct VerifiedTokens {
    cache: Cache<String, AccessClaims>,
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self {
            cache: Cache::new(CAPACITY),
        }
    }
}

impl VerifiedTokens {
    /// The claims of `token` if it was verified before and has not expired.
    pub fn get(&self, token: &str) -> Option<AccessClaims> {
        let claims = self.cache.get(token)?;
        if claims.exp + LEEWAY_SECS < now() {
            self.cache.remove(token);
            return None;
        }
        Some(claims)
    }

    /// Remembers a token that passed the full check.
    pub fn insert(&self, token: &str, claims: &AccessClaims) {
        self.cache.insert(token.to_owned(), claims.clone());
    }
}

/// Seconds since the Unix epoch, as JWT times are.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use confab_protocol::auth::Role;

    use super::*;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            sub: "usr-1".into(),
            name: "ada".into(),
            role: Role::User,
            iat: 0,
            exp,
            iss: "confab-gateway".into(),
            aud: "confab".into(),
        }
    }

    #[test]
    fn a_remembered_token_is_found_by_its_exact_text_only() {
        let tokens = VerifiedTokens::default();
        let now = now();
        tokens.insert("a.b.c", &claims(now + 60));
        assert_eq!(tokens.get("a.b.c").unwrap().sub, "usr-1");
        assert!(tokens.get("a.b.d").is_none());
        assert!(tokens.get("a.b.").is_none());
    }

    #[test]
    fn an_expired_token_is_not_served_from_the_cache() {
        let tokens = VerifiedTokens::default();
        tokens.insert("a.b.c", &claims(now() - 60));
        assert!(tokens.get("a.b.c").is_none());
    }
}
