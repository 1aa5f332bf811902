//! `POST /api/v1/auth/logout`: `{"refresh_token"}` signs out that login
//! (its refresh token family is revoked); `{"everywhere": true}` with the
//! user's access token signs out every login of the user. Access tokens
//! already issued stay valid until they expire (at most
//! `access_token_ttl_secs`): they are verified without a database lookup,
//! by every service.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use serde::Deserialize;

use super::body;
use super::tokens::hash_refresh_token;
use crate::GatewayState;
use crate::auth::authenticate;
use crate::store::refresh_tokens;

#[derive(Deserialize)]
struct LogoutBody {
    refresh_token: Option<String>,
    #[serde(default)]
    everywhere: bool,
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: LogoutBody = body::parse(&req, &body)?;
    if request.refresh_token.is_none() && !request.everywhere {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "give the refresh_token to sign out, or everywhere: true",
        ));
    }
    if request.everywhere {
        let claims = authenticate(&req, &state.keys).await?;
        let revoked = refresh_tokens::revoke_all_of_user(&state.db, &claims.sub).await?;
        tracing::info!(user_id = %claims.sub, revoked, "signed out everywhere");
    }
    // Possessing the refresh token is the credential; an unknown one gets
    // the same answer, so the endpoint tells nothing about tokens.
    if let Some(token) = request.refresh_token {
        refresh_tokens::revoke_family_of(&state.db, &hash_refresh_token(token.trim())).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}
