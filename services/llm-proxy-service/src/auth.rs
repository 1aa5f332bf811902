//! Who is calling the proxy, and on whose behalf.
//!
//! An agent presents its agent key as `Authorization: Bearer`; the services
//! present the service token. Either may attribute the call with
//! `X-User-Id`, `X-Api-Key-Id`, `X-Conversation-Id` and `X-Agent-Id`; from
//! anyone else those headers are not trusted. A user may also call the proxy
//! directly with an access token: the call is then attributed to that user
//! and nothing else.
//!
//! The budget endpoints and the internal ones are for the services alone:
//! [`service_caller`] and [`require_service_token`] refuse a request without
//! the service token, whatever else it carries.

use std::collections::HashMap;

use actix_web::HttpRequest;
use confab_kit::ApiError;
use confab_kit::auth::{Caller, ServiceAuth, bearer_token, header};
use confab_protocol::auth::{
    AGENT_ID_HEADER, API_KEY_ID_HEADER, CONVERSATION_ID_HEADER, SERVICE_TOKEN_HEADER,
    USER_ID_HEADER,
};
use subtle::ConstantTimeEq;

use crate::error::ProxyError;

/// Attribution of one LLM call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallIdentity {
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    pub conversation_id: Option<String>,
    /// The user's personal API key the call came with (the gateway's
    /// `X-Api-Key-Id`), trusted as `X-User-Id` is.
    pub api_key_id: Option<String>,
    /// Whether an agent made the call (its agent key, or the service token
    /// with `X-Agent-Id`): a call inside a turn that chat-service already
    /// admitted, never refused for budget (a turn already running finishes).
    /// Otherwise a user called directly, and their budget is checked first.
    pub from_agent: bool,
}

/// Agent keys from configuration: agent id → key.
#[derive(Debug, Clone, Default)]
pub struct AgentKeys(HashMap<String, String>);

impl AgentKeys {
    pub fn new(keys: HashMap<String, String>) -> Self {
        Self(
            keys.into_iter()
                .filter(|(_, key)| !key.is_empty())
                .collect(),
        )
    }

    /// The agent a key belongs to. Every key is compared, in constant time,
    /// so timing tells nothing about which keys exist.
    pub fn agent_for(&self, candidate: &str) -> Option<&str> {
        let mut found = None;
        for (agent, key) in &self.0 {
            if bool::from(candidate.as_bytes().ct_eq(key.as_bytes())) {
                found = Some(agent.as_str());
            }
        }
        found
    }
}

pub async fn identify(
    req: &HttpRequest,
    service: &ServiceAuth,
    keys: &AgentKeys,
) -> Result<CallIdentity, ApiError> {
    let attributed = |agent_id: Option<String>| CallIdentity {
        from_agent: agent_id.is_some(),
        agent_id,
        user_id: header(req, USER_ID_HEADER).map(str::to_owned),
        conversation_id: header(req, CONVERSATION_ID_HEADER).map(str::to_owned),
        api_key_id: header(req, API_KEY_ID_HEADER).map(str::to_owned),
    };
    if let Some(token) = header(req, SERVICE_TOKEN_HEADER) {
        if service.is_service_token(token) {
            return Ok(attributed(header(req, AGENT_ID_HEADER).map(str::to_owned)));
        }
        return Err(ProxyError::InvalidServiceToken.into());
    }
    let bearer = bearer_token(req).ok_or_else(|| ApiError::from(ProxyError::CredentialRequired))?;
    if let Some(agent) = keys.agent_for(bearer) {
        // The key names the agent; a different X-Agent-Id cannot override it.
        return Ok(attributed(Some(agent.to_owned())));
    }
    let caller = Caller::from_request_or_token(req, Some(bearer))
        .await
        .map_err(|_| ProxyError::UnknownCredential)?;
    Ok(CallIdentity {
        agent_id: None,
        user_id: Some(caller.user_id),
        conversation_id: None,
        api_key_id: None,
        from_agent: false,
    })
}

/// Refuses a request that does not carry the valid service token: 401, a
/// wrong token included. A user's access token is no substitute.
pub fn require_service_token(req: &HttpRequest, service: &ServiceAuth) -> Result<(), ProxyError> {
    match header(req, SERVICE_TOKEN_HEADER) {
        Some(token) if service.is_service_token(token) => Ok(()),
        Some(_) => Err(ProxyError::InvalidServiceToken),
        None => Err(ProxyError::ServiceTokenRequired),
    }
}

/// The user a service acts for, on an endpoint only the services may call:
/// the service token and the identity headers (`X-User-Id`,
/// `X-User-Role`).
pub async fn service_caller(req: &HttpRequest, service: &ServiceAuth) -> Result<Caller, ApiError> {
    require_service_token(req, service)?;
    Caller::from_request_or_token(req, None).await
}

/// [`service_caller`], who must be an admin; `what` names the act refused.
pub async fn service_admin(
    req: &HttpRequest,
    service: &ServiceAuth,
    what: &'static str,
) -> Result<Caller, ApiError> {
    let caller = service_caller(req, service).await?;
    if !caller.is_admin() {
        return Err(ProxyError::AdminsOnly(what).into());
    }
    Ok(caller)
}
