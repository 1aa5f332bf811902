//! `POST /api/v1/auth/refresh`: JSON `{"refresh_token"}` or an OAuth2 form
//! (`grant_type=refresh_token&refresh_token=…`). The presented token is used
//! up and a new pair is returned (rotation); a token presented twice revokes
//! every token of its login (reuse detection, see `store::refresh_tokens`).

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use serde::Deserialize;

use super::body;
use super::tokens::{self, hash_refresh_token, no_store};
use crate::GatewayState;
use crate::store::refresh_tokens::{self, Rotation};
use crate::store::users;

#[derive(Deserialize)]
struct RefreshBody {
    grant_type: Option<String>,
    refresh_token: String,
}

pub async fn refresh(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let presented: RefreshBody = body::parse(&req, &body)?;
    body::check_grant_type(presented.grant_type.as_deref(), "refresh_token")?;
    // The user and family are filled in by the store from the used token.
    let (refresh_token, next) = tokens::new_refresh_token(&state, "", String::new());
    let rotation = refresh_tokens::rotate(
        &state.db,
        &hash_refresh_token(presented.refresh_token.trim()),
        next,
    )
    .await?;
    let user_id = match rotation {
        Rotation::Rotated { user_id } => user_id,
        Rotation::Reused => {
            tracing::warn!("a used refresh token was presented again; its family is revoked");
            return Err(invalid(
                "refresh_token_reused",
                "this refresh token was already used; every session of its login is now signed out",
            ));
        }
        Rotation::Revoked => {
            return Err(invalid(
                "refresh_token_revoked",
                "this refresh token was revoked",
            ));
        }
        Rotation::Expired => {
            return Err(invalid(
                "refresh_token_expired",
                "this refresh token expired",
            ));
        }
        Rotation::Unknown => return Err(invalid("invalid_refresh_token", "unknown refresh token")),
    };
    let user = users::by_id(&state.db, &user_id)
        .await?
        .ok_or_else(|| invalid("invalid_refresh_token", "the token's user no longer exists"))?;
    Ok(no_store().json(tokens::access_with(&state, &user, refresh_token)?))
}

fn invalid(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}
