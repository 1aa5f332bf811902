//! `POST /api/v1/auth/login`: JSON `{"username","password"}` or an OAuth2
//! password form (`grant_type=password&username=…&password=…`). Limited
//! per client IP (`[rate_limits] login_per_minute`).
//!
//! Every attempt is in the audit trail (`login.succeeded`, `login.failed`
//! with the name tried, both with the client's address). A disabled account
//! is refused with 403 `account_disabled`, said only after the right
//! password.
//!
//! From the web console (`X-Confab-Client: console`), which must come from a
//! trusted origin (login CSRF: no other site may sign a browser in to an
//! account of its choosing), the tokens are set as cookies and the JSON
//! carries no refresh token (see `browser`).

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use serde::Deserialize;
use serde_json::json;

use super::body;
use super::tokens::{self, no_store};
use crate::GatewayState;
use crate::audit::{self, Action, Actor};
use crate::browser;
use crate::error::GatewayError;
use crate::store::users;

#[derive(Deserialize)]
struct LoginBody {
    grant_type: Option<String>,
    username: String,
    password: String,
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let console = browser::is_console(&req);
    if console {
        state.browser.check_origin(&req)?;
    }
    state.limits.check_login(&req).await?;
    let credentials: LoginBody = body::parse(&req, &body)?;
    body::check_grant_type(credentials.grant_type.as_deref(), "password")?;
    let username = credentials.username.trim().to_lowercase();
    let user = users::by_username(&state.db, &username).await?;
    let stored = match &user {
        Some(user) => user.password_hash.clone(),
        None => state.dummy_hash.clone(),
    };
    let matches = state
        .passwords
        .verify(credentials.password, stored)
        .await
        .map_err(ApiError::internal)?;
    let user = match user {
        Some(user) if matches => user,
        user => {
            let actor = Actor {
                id: user.map(|u| u.id),
                name: Some(username),
            };
            audit::record(&state, &req, actor, Action::LoginFailed, None, json!({})).await?;
            return Err(GatewayError::WrongCredentials.into());
        }
    };
    let actor = Actor::user(&user.id, &user.username);
    if user.disabled_at.is_some() {
        let detail = json!({"reason": "account_disabled"});
        audit::record(&state, &req, actor, Action::LoginFailed, None, detail).await?;
        return Err(GatewayError::AccountDisabled.into());
    }
    audit::record(&state, &req, actor, Action::LoginSucceeded, None, json!({})).await?;
    let tokens = tokens::for_login(&state, &user).await?;
    Ok(match console {
        true => tokens::console_answer(&req, &state, tokens),
        false => no_store().json(tokens),
    })
}
