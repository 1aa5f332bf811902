//! `GET /.well-known/jwks.json`: the keys that verify access tokens, as
//! the database held them at most a second earlier (see `KeyRing::jwks`).

use actix_web::{HttpResponse, web};

use crate::GatewayState;

/// The public keys that verify the gateway's access tokens (JWKS, EdDSA
/// over Ed25519).
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    operation_id = "jwks",
    tag = "internal",
    responses(
        (status = 200, description = "`{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\", \"kid\", \"alg\": \"EdDSA\", \"use\": \"sig\"}]}` (`Cache-Control: public, max-age=300`).", body = Object),
    )
)]
pub async fn jwks(state: web::Data<GatewayState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=300"))
        .json(state.keys.jwks().await)
}
