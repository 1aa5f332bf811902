//! `POST /api/v1/auth/login`: JSON `{"username","password"}` or an OAuth2
//! password form (`grant_type=password&username=…&password=…`).

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use confab_kit::ApiError;
use confab_protocol::auth::{Credentials, Role, TokenResponse};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::GatewayState;
use crate::passwords;
use crate::store::refresh_tokens::{self, RefreshTokenRow};
use crate::store::users::{self, UserRow};

#[derive(Deserialize)]
struct PasswordForm {
    grant_type: Option<String>,
    username: String,
    password: String,
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let credentials = parse_credentials(&req, &body)?;
    let username = credentials.username.trim().to_lowercase();
    let user = users::by_username(&state.db, &username).await?;
    let stored = match &user {
        Some(user) => user.password_hash.clone(),
        None => state.dummy_hash.clone(),
    };
    let matches = passwords::verify(credentials.password, stored)
        .await
        .map_err(ApiError::internal)?;
    let user = match user {
        Some(user) if matches => user,
        _ => return Err(ApiError::unauthorized("wrong username or password")),
    };
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(issue_tokens(&state, &user, None).await?))
}

fn parse_credentials(req: &HttpRequest, body: &[u8]) -> Result<Credentials, ApiError> {
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let form: PasswordForm = serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::unprocessable("invalid_body", format!("invalid form: {e}")))?;
        if form.grant_type.as_deref().is_some_and(|g| g != "password") {
            return Err(ApiError::bad_request(
                "unsupported_grant_type",
                "only grant_type=password is supported",
            ));
        }
        return Ok(Credentials {
            username: form.username,
            password: form.password,
        });
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    serde_json::from_value(value)
        .map_err(|e| ApiError::unprocessable("invalid_body", format!("invalid body: {e}")))
}

/// An access token and a new refresh token, in `family` (a new family for a
/// fresh login).
pub async fn issue_tokens(
    state: &GatewayState,
    user: &UserRow,
    family: Option<String>,
) -> Result<TokenResponse, ApiError> {
    let role = Role::parse_lenient(&user.role);
    let access_token = state
        .keys
        .issue(&user.id, &user.username, role)
        .map_err(ApiError::internal)?;
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let refresh_token = URL_SAFE_NO_PAD.encode(secret);
    let now = Utc::now().naive_utc();
    refresh_tokens::insert(
        &state.db,
        &RefreshTokenRow {
            id: confab_kit::ids::new_id("rt"),
            user_id: user.id.clone(),
            family_id: family.unwrap_or_else(|| confab_kit::ids::new_id("fam")),
            token_hash: hash_refresh_token(&refresh_token),
            expires_at: now + Duration::seconds(state.refresh_ttl_secs),
            used_at: None,
            revoked_at: None,
            created_at: now,
        },
    )
    .await?;
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
