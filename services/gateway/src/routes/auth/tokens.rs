//! The token pair that login and refresh answer with.

use actix_web::HttpResponse;
use actix_web::HttpResponseBuilder;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use confab_kit::ApiError;
use confab_protocol::auth::{Role, TokenResponse};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::GatewayState;
use crate::store::refresh_tokens::{self, RefreshTokenRow};
use crate::store::users::UserRow;

/// A 200 that no cache may keep: it carries tokens.
pub fn no_store() -> HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response.insert_header(("cache-control", "no-store"));
    response
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
        token_hash: hash_refresh_token(&token),
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
        .issue(&user.id, &user.username, Role::parse_lenient(&user.role))
        .map_err(ApiError::internal)?;
    Ok(TokenResponse {
        access_token,
        token_type: "bearer".into(),
        expires_in: state.keys.ttl_secs(),
        refresh_token,
    })
}

/// Refresh tokens carry 256 random bits, so a fast hash suffices to keep the
/// database from holding usable tokens.
pub fn hash_refresh_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
