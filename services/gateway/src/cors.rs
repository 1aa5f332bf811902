//! Cross-origin requests from browsers (`[cors]`), with the `actix-cors`
//! crate. No origins configured (the default) means no CORS headers at all:
//! only same-origin pages (the web console) may call the API from a browser.
//! With origins listed, those may send credentials; `"*"` allows any origin
//! without credentials.

use actix_cors::Cors;
use actix_web::middleware::Condition;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct CorsSettings {
    pub allowed_origins: Vec<String>,
    pub max_age_secs: usize,
}

/// The validated policy; each worker builds its middleware from it.
#[derive(Debug, Clone)]
pub struct CorsPolicy {
    settings: CorsSettings,
}

impl CorsPolicy {
    pub fn new(settings: &CorsSettings) -> anyhow::Result<Self> {
        for origin in &settings.allowed_origins {
            let valid = origin == "*"
                || reqwest::Url::parse(origin)
                    .is_ok_and(|url| url.has_host() && url.path() == "/" && !origin.ends_with('/'));
            anyhow::ensure!(
                valid,
                "[cors] allowed_origins: {origin:?} is not an origin like https://app.example.com"
            );
        }
        Ok(Self {
            settings: settings.clone(),
        })
    }

    /// The middleware, or none when no origins are configured: actix-cors
    /// adds `Access-Control-Expose-Headers`, `-Allow-Credentials` and `Vary`
    /// to every response it wraps, Origin or not, and without origins no
    /// response may carry any.
    pub fn middleware(&self) -> Condition<Cors> {
        let origins = &self.settings.allowed_origins;
        let cors = if origins.iter().any(|o| o == "*") {
            Cors::default().allow_any_origin().send_wildcard()
        } else {
            origins
                .iter()
                .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin))
                .supports_credentials()
        };
        let cors = cors
            .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
            // Never `x-confab-client`: that no other site's page can send
            // the console marker is what lets the CSRF check accept it in
            // place of an Origin (see `browser`).
            .allowed_headers([
                "authorization",
                "content-type",
                "accept",
                "last-event-id",
                "x-request-id",
                "x-response-format",
                "traceparent",
            ])
            .expose_headers(["x-request-id", "retry-after"])
            .max_age(self.settings.max_age_secs);
        Condition::new(!origins.is_empty(), cors)
    }
}
