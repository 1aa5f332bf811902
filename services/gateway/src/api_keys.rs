//! Personal API keys (issue 21): keys that scripts and SDKs send as
//! `Authorization: Bearer cfk_…` wherever a user's access token works,
//! without refreshing anything. A key is `cfk_` and 43 base62 characters
//! (256 random bits); the gateway keeps its SHA-256 only (the key is random,
//! so a fast hash is enough) and shows it once, when it is made.
//!
//! A presented key is looked up by its prefix (`cfk_` and its first 8
//! characters, which lists show too) and its hash compared in constant
//! time. The lookup reads the database on every use, so a revoked or
//! expired key is refused on its next request, on every gateway instance.
//!
//! Scopes: `chat` (conversations, turns, agents, the chat WebSockets: the
//! routes of scope `chat`), `llm` (the routes of scope `llm`: traces, LLM
//! calls, the trace WebSocket), `read` (any route's GET, no WebSocket). A
//! key never manages keys, signs out or administers: those need a signed-in
//! session (a key that leaked cannot make itself more keys).

use actix_web::http::Method;
use chrono::{NaiveDateTime, TimeDelta};
use confab_kit::db::Db;
use confab_protocol::auth::{AuthContext, Role};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::domain::hash_random_secret;
use crate::error::GatewayError;
use crate::store::api_keys::{self, ApiKeyRow};

/// What every key starts with, so a key is told from an access token (a
/// JWT) without parsing, and secret scanners can find leaked ones.
pub const KEY_START: &str = "cfk_";
/// Base62 characters after `cfk_`: 43 × log2(62) ≈ 256 random bits.
const SECRET_CHARS: usize = 43;
/// Characters of the secret shown in lists and used to find the key: 8
/// tell a user's keys apart and leave 208 bits unknown.
const SHOWN_CHARS: usize = 8;
/// How often a key's `last_used_at` is written at most: a script calling
/// in a loop must not turn every request into a write.
const TOUCH_EVERY: TimeDelta = TimeDelta::seconds(60);

/// One scope of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The chat routes: conversations, turns, agents, `/ws/chat`.
    Chat,
    /// The LLM routes: traces, LLM calls, `/ws/trace`.
    Llm,
    /// Every route's GET that is not a WebSocket.
    Read,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Chat => "chat",
            Scope::Llm => "llm",
            Scope::Read => "read",
        }
    }

    fn parse(name: &str) -> Option<Scope> {
        match name {
            "chat" => Some(Scope::Chat),
            "llm" => Some(Scope::Llm),
            "read" => Some(Scope::Read),
            _ => None,
        }
    }
}

/// A key's scopes, each once, in the order chat, llm, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// At least one scope; a repeated one counts once.
    pub fn new(scopes: &[Scope]) -> Result<Self, GatewayError> {
        let scopes = Self::ordered(scopes);
        if scopes.0.is_empty() {
            return Err(GatewayError::InvalidRequest(
                "scopes: give at least one of chat, llm, read",
            ));
        }
        Ok(scopes)
    }

    /// From the stored form, `chat,read`; unknown names (none are written)
    /// are skipped.
    pub fn from_stored(stored: &str) -> Self {
        let named: Vec<Scope> = stored.split(',').filter_map(Scope::parse).collect();
        Self::ordered(&named)
    }

    fn ordered(scopes: &[Scope]) -> Self {
        Self(
            [Scope::Chat, Scope::Llm, Scope::Read]
                .into_iter()
                .filter(|s| scopes.contains(s))
                .collect(),
        )
    }

    pub fn to_stored(&self) -> String {
        self.names().join(",")
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.as_str()).collect()
    }

    /// Whether a request on a route of `route` scope is allowed; `reading`:
    /// a GET or HEAD that is not a WebSocket upgrade.
    pub fn allow(&self, route: Scope, reading: bool) -> bool {
        self.0.contains(&route) || (reading && self.0.contains(&Scope::Read))
    }
}

/// A new key: the key itself (shown once) and what is stored of it.
pub struct NewKey {
    pub key: String,
    pub prefix: String,
    pub hash: String,
}

impl NewKey {
    pub fn generate() -> Self {
        let secret: String = rand::rngs::OsRng
            .sample_iter(&Alphanumeric)
            .take(SECRET_CHARS)
            .map(char::from)
            .collect();
        let key = format!("{KEY_START}{secret}");
        Self {
            prefix: key[..KEY_START.len() + SHOWN_CHARS].to_owned(),
            hash: hash_random_secret(&key),
            key,
        }
    }
}

/// Whether a bearer token is an API key (else it is an access token).
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(KEY_START)
}

/// A verified key: whose it is and what it may do.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub identity: AuthContext,
    pub scopes: Scopes,
}

impl KeyGrant {
    /// Whether the key's scopes allow `method` on a route of `scope`
    /// (`prefix`, for the refusal's words); `upgrade`: a WebSocket.
    pub fn admit(
        &self,
        scope: Scope,
        prefix: &str,
        method: &Method,
        upgrade: bool,
    ) -> Result<(), GatewayError> {
        let reading = !upgrade && matches!(*method, Method::GET | Method::HEAD);
        if self.scopes.allow(scope, reading) {
            return Ok(());
        }
        Err(GatewayError::InsufficientScope {
            scopes: self.scopes.names().join(", "),
            method: method.to_string(),
            route: prefix.to_owned(),
        })
    }
}

/// Checks a presented key against the stored ones at `now`: unknown,
/// revoked, expired or malformed keys are all [`GatewayError::InvalidToken`].
pub async fn verify(db: &Db, key: &str, now: NaiveDateTime) -> Result<KeyGrant, GatewayError> {
    let Some(prefix) = prefix_of(key) else {
        return Err(GatewayError::InvalidToken);
    };
    let presented = hash_random_secret(key);
    let found = api_keys::live_by_prefix(db, prefix)
        .await?
        .into_iter()
        .find(|owner| bool::from(owner.key.key_hash.as_bytes().ct_eq(presented.as_bytes())))
        .ok_or(GatewayError::InvalidToken)?;
    if found.key.expires_at.is_some_and(|at| at <= now) {
        return Err(GatewayError::InvalidToken);
    }
    touch(db, &found.key, now).await;
    Ok(KeyGrant {
        scopes: Scopes::from_stored(&found.key.scopes),
        identity: AuthContext {
            user_id: found.key.user_id.clone(),
            username: Some(found.username),
            role: Role::parse_lenient(&found.role),
            api_key_id: Some(found.key.id.clone()),
        },
    })
}

/// Writes the key's last use, at most every [`TOUCH_EVERY`]; a failure is
/// logged, not the caller's problem.
async fn touch(db: &Db, key: &ApiKeyRow, now: NaiveDateTime) {
    if key.last_used_at.is_some_and(|at| now - at < TOUCH_EVERY) {
        return;
    }
    if let Err(error) = api_keys::touch(db, &key.id, now).await {
        tracing::warn!(%error, key_id = %key.id, "noting an API key's use failed");
    }
}

/// The lookup prefix of a well-formed key.
fn prefix_of(key: &str) -> Option<&str> {
    let secret = key.strip_prefix(KEY_START)?;
    let well_formed =
        secret.len() == SECRET_CHARS && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    well_formed.then(|| &key[..KEY_START.len() + SHOWN_CHARS])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_cfk_and_43_base62_characters_and_is_found_by_its_prefix() {
        let new = NewKey::generate();
        assert_eq!(new.key.len(), 4 + 43);
        assert!(new.key.starts_with("cfk_"));
        assert_eq!(prefix_of(&new.key), Some(new.prefix.as_str()));
        assert_eq!(new.prefix.len(), 12);
        assert_eq!(new.hash, hash_random_secret(&new.key));
        assert_ne!(NewKey::generate().key, new.key);
    }

    #[test]
    fn malformed_keys_have_no_prefix() {
        let good = NewKey::generate().key;
        for bad in [
            "cfk_".to_owned(),
            format!("{good}x"),
            good[..good.len() - 1].to_owned(),
            good.replace("cfk_", "cfx_"),
            format!("cfk_{}!", &good[5..]),
        ] {
            assert_eq!(prefix_of(&bad), None, "{bad}");
        }
    }

    #[test]
    fn scopes_allow_their_routes_and_read_allows_reading_only() {
        let read = Scopes::new(&[Scope::Read]).unwrap();
        assert!(read.allow(Scope::Chat, true));
        assert!(!read.allow(Scope::Chat, false));
        let chat = Scopes::new(&[Scope::Chat, Scope::Chat]).unwrap();
        assert_eq!(chat.to_stored(), "chat");
        assert!(chat.allow(Scope::Chat, false));
        assert!(!chat.allow(Scope::Llm, true));
        let both = Scopes::from_stored("read,chat");
        assert_eq!(both.names(), ["chat", "read"]);
        assert!(Scopes::new(&[]).is_err());
    }
}
