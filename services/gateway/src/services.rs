//! The gateway's own calls to the services behind it, for administration:
//! deleting a user's data everywhere, her budgets and usage (kept by
//! llm-proxy-service beside the calls they count). Sent with the service
//! token and, where the service wants one, the acting admin's identity.
//! An upstream's instances are tried in order until one answers.

use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use anyhow::Context;
use confab_protocol::auth::{
    AuthContext, SERVICE_TOKEN_HEADER, USER_ID_HEADER, USER_NAME_HEADER, USER_ROLE_HEADER,
};
use reqwest::header::HeaderValue;
use serde_json::Value;

use crate::error::GatewayError;
use crate::proxy::instances::UpstreamConfig;

/// One of the services the gateway administers through.
#[derive(Debug, Clone, Copy)]
pub enum Service {
    Chat,
    LlmProxy,
}

pub struct Services {
    http: reqwest::Client,
    chat: Vec<String>,
    llm_proxy: Vec<String>,
    service_token: HeaderValue,
}

/// A service's answer: its status and body.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Answer {
    /// The answer as it came, for the client (a 4xx is the service's
    /// refusal of what the admin sent, in the shared error body).
    pub fn relay(self) -> HttpResponse {
        HttpResponse::build(self.status)
            .content_type("application/json")
            .body(self.body)
    }

    /// The body as JSON, if it was a success.
    pub fn json(&self) -> Option<Value> {
        self.status
            .is_success()
            .then(|| serde_json::from_slice(&self.body).ok())
            .flatten()
    }
}

impl Services {
    /// `upstreams` are the gateway's (`chat` and `llm_proxy`).
    pub fn new(
        upstreams: &std::collections::HashMap<String, UpstreamConfig>,
        service_token: HeaderValue,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let urls = |name: &str| {
            upstreams
                .get(name)
                .map(|u| u.urls.clone())
                .with_context(|| format!("[upstreams] {name} is not configured"))
        };
        Ok(Self {
            http: reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .timeout(response_timeout)
                .build()
                .context("building the services' client")?,
            chat: urls("chat")?,
            llm_proxy: urls("llm_proxy")?,
            service_token,
        })
    }

    /// Sends `method path` (with its query) to `service`, as `acting` when
    /// given. Fails with 502 when no instance answers.
    pub async fn call(
        &self,
        service: Service,
        method: reqwest::Method,
        path: &str,
        acting: Option<&AuthContext>,
        body: Option<&Value>,
    ) -> Result<Answer, GatewayError> {
        let bases = match service {
            Service::Chat => &self.chat,
            Service::LlmProxy => &self.llm_proxy,
        };
        for base in bases {
            let mut request = self
                .http
                .request(method.clone(), format!("{base}{path}"))
                .header(SERVICE_TOKEN_HEADER, self.service_token.clone());
            if let Some(user) = acting {
                request = request
                    .header(USER_ID_HEADER, &user.user_id)
                    .header(USER_ROLE_HEADER, user.role.as_str());
                if let Some(name) = &user.username {
                    request = request.header(USER_NAME_HEADER, name);
                }
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) => {
                    let status = StatusCode::from_u16(response.status().as_u16())
                        .unwrap_or(StatusCode::BAD_GATEWAY);
                    let body = response
                        .bytes()
                        .await
                        .map_err(|_| GatewayError::UpstreamUnavailable)?;
                    return Ok(Answer { status, body });
                }
                Err(error) if error.is_connect() => {
                    tracing::warn!(%base, %error, "a service instance refused the connection");
                }
                Err(error) if error.is_timeout() => return Err(GatewayError::UpstreamTimeout),
                Err(error) => {
                    tracing::warn!(%base, %error, "a service call failed");
                    return Err(GatewayError::UpstreamUnavailable);
                }
            }
        }
        Err(GatewayError::UpstreamUnavailable)
    }
}
