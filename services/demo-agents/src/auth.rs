//! Who may call an agent's JSON-RPC endpoint (DESIGN §5): a caller that
//! presents `Authorization: Bearer <token>` with the services' shared token
//! or the agent's own inbound key. Nobody else: the agent passes the
//! `user_id` a request names on to llm-proxy-service under its own agent
//! key, so an unauthenticated caller could write into any user's history.
//!
//! The agent card stays public and declares the scheme
//! ([`declare`]), so an A2A client knows what to send.

use actix_web::HttpRequest;
use confab_protocol::a2a::{AgentCard, SecurityScheme};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The name of the scheme in the agent card.
pub const SCHEME_NAME: &str = "bearer";

/// The tokens one agent accepts, kept as SHA-256 digests: a candidate is
/// hashed and compared digest to digest in constant time, so neither the
/// bytes nor the length of a token can be found by timing the answers.
pub struct Credentials {
    service_token: Option<[u8; 32]>,
    inbound_key: Option<[u8; 32]>,
}

/// Proof that a request was authenticated; only [`Credentials::check`]
/// makes one. Whatever reads identity from a request (the `user_id` of its
/// metadata) takes it, so nothing reads identity from an unauthenticated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authenticated {
    ServiceToken,
    InboundKey,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` at all.
    Missing,
    /// A token this agent does not accept.
    Invalid,
}

impl Credentials {
    /// An empty token or key accepts nothing (an unset variable must not
    /// open the agent to a caller sending `Bearer ` and nothing else).
    pub fn new(service_token: &str, inbound_key: Option<&str>) -> Self {
        let digest = |token: &str| (!token.is_empty()).then(|| Sha256::digest(token).into());
        Self {
            service_token: digest(service_token),
            inbound_key: inbound_key.and_then(digest),
        }
    }

    pub fn check(&self, req: &HttpRequest) -> Result<Authenticated, Refusal> {
        let token = confab_kit::auth::bearer_token(req).ok_or(Refusal::Missing)?;
        let candidate: [u8; 32] = Sha256::digest(token).into();
        let matches = |accepted: &Option<[u8; 32]>| {
            accepted.is_some_and(|digest| bool::from(digest.ct_eq(&candidate)))
        };
        // Both compared whatever the first gives, so the time does not say
        // which one matched.
        let (service, inbound) = (matches(&self.service_token), matches(&self.inbound_key));
        match (service, inbound) {
            (true, _) => Ok(Authenticated::ServiceToken),
            (false, true) => Ok(Authenticated::InboundKey),
            (false, false) => Err(Refusal::Invalid),
        }
    }
}

/// Declares in the card that every call needs `Authorization: Bearer`.
pub fn declare(card: &mut AgentCard) {
    card.require(
        SCHEME_NAME,
        SecurityScheme::bearer(
            "Authorization: Bearer with Confab's service token or this agent's inbound key; \
             every JSON-RPC call needs it",
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn request(authorization: Option<&str>) -> HttpRequest {
        let mut request = TestRequest::post();
        if let Some(value) = authorization {
            request = request.insert_header(("authorization", value));
        }
        request.to_http_request()
    }

    #[test]
    fn the_service_token_or_the_inbound_key_and_nothing_else_is_accepted() {
        let credentials = Credentials::new("service-secret", Some("agent-secret"));
        let check = |value| credentials.check(&request(value));
        assert_eq!(
            check(Some("Bearer service-secret")),
            Ok(Authenticated::ServiceToken)
        );
        assert_eq!(
            check(Some("Bearer agent-secret")),
            Ok(Authenticated::InboundKey)
        );
        assert_eq!(check(None), Err(Refusal::Missing));
        assert_eq!(
            check(Some("Basic c2VydmljZS1zZWNyZXQ=")),
            Err(Refusal::Missing)
        );
        assert_eq!(check(Some("Bearer service-secre")), Err(Refusal::Invalid));
        assert_eq!(check(Some("Bearer service-secrets")), Err(Refusal::Invalid));
    }

    #[test]
    fn an_empty_token_or_key_accepts_nothing() {
        let credentials = Credentials::new("", Some(""));
        assert_eq!(
            credentials.check(&request(Some("Bearer x"))),
            Err(Refusal::Invalid)
        );
        let without_key = Credentials::new("service-secret", None);
        assert_eq!(
            without_key.check(&request(Some("Bearer agent-secret"))),
            Err(Refusal::Invalid)
        );
    }
}
