//! The token pair that login and refresh answer with: as JSON for API
//! clients, in cookies for the web console (see `browser`).

use actix_web::HttpResponseBuilder;
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use confab_kit::ApiError;
use confab_protocol::auth::{Role, TokenResponse};
use rand::RngCore;
use serde::Serialize;
use utoipa::ToSchema;

use crate::GatewayState;
use crate::domain::hash_random_secret;
use crate::store::refresh_tokens::{self, RefreshTokenRow};
use crate::store::users::UserRow;

/// A 200 that no cache may keep: it carries tokens.
pub fn no_store() -> HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response.insert_header(("cache-control", "no-store"));
    response
}

/// The console's answer to login and refresh: the refresh token travels only
/// in its `HttpOnly` cookie, out of any script's reach. The gateway alone
/// writes this shape (the console reads it), so it is not a protocol type.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleTokens {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

/// `tokens` for the console: both cookies set, the JSON without the refresh
/// token.
pub fn console_answer(
    req: &HttpRequest,
    state: &GatewayState,
    tokens: TokenResponse,
) -> HttpResponse {
    let TokenResponse {
        access_token,
        token_type,
        expires_in,
        refresh_token,
    } = tokens;
    let mut response = no_store();
    for cookie in state
        .browser
        .session_cookies(req, access_token.clone(), refresh_token)
    {
        response.cookie(cookie);
    }
    response.json(ConsoleTokens {
        access_token,
        token_type,
        expires_in,
    })
}

/// `err` as its JSON error, with both cookies cleared. Built here rather
/// than returned as an error: the error middleware renders errors anew and
/// would drop the cookies.
pub fn error_clearing_cookies(
    req: &HttpRequest,
    state: &GatewayState,
    err: &ApiError,
) -> HttpResponse {
    let request_id = confab_kit::server::request_id(req);
    let mut response = HttpResponse::build(err.status());
    response.insert_header(("cache-control", "no-store"));
    for cookie in state.browser.removal_cookies(req) {
        response.cookie(cookie);
    }
    response.json(err.body(request_id.as_deref()))
}

/// The body of a request that may come empty (the console's refresh and
/// logout carry their token in a cookie): blank means `{}`.
pub fn is_blank(body: &[u8]) -> bool {
    body.trim_ascii().is_empty()
}

/// Tokens for a fresh login: a new refresh token family.
pub async fn for_login(state: &GatewayState, user: &UserRow) -> Result<TokenResponse, ApiError> {
    let (refresh_token, row) = new_refresh_token(state, &user.id, confab_kit::ids::new_id("fam"));
    refresh_tokens::start_family(&state.db, &row).await?;
    access_with(state, user, refresh_token)
}

/// An unsaved refresh token and its row (the family and user are set by
/// the caller or, on rotation, by the store).
pub fn new_refresh_token(
    state: &GatewayState,
    user_id: &str,
    family_id: String,
) -> (String, RefreshTokenRow) {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let token = URL_SAFE_NO_PAD.encode(secret);
    let now = Utc::now().naive_utc();
    let row = RefreshTokenRow {
        id: confab_kit::ids::new_id("rt"),
        user_id: user_id.to_owned(),
        family_id,
        token_hash: hash_random_secret(&token),
        expires_at: now + Duration::seconds(state.refresh_ttl_secs),
        used_at: None,
        created_at: now,
    };
    (token, row)
}

/// An access token for `user` next to `refresh_token`.
pub fn access_with(
    state: &GatewayState,
    user: &UserRow,
    refresh_token: String,
) -> Result<TokenResponse, ApiError> {
    let access_token = state
        .keys
        .issue(
            &user.id,
            &user.username,
            Role::parse_lenient(&user.role),
            user.tokens_valid_after.map(crate::revocations::cut_off),
        )
        .map_err(ApiError::internal)?;
    Ok(TokenResponse {
        access_token,
        token_type: "bearer".into(),
        expires_in: state.keys.ttl_secs(),
        refresh_token,
    })
}
