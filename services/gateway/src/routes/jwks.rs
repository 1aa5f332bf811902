//! `GET /.well-known/jwks.json`: the keys that verify access tokens, as
//! the database held them at most a second earlier (see `KeyRing::jwks`).

use actix_web::{HttpResponse, web};

use crate::GatewayState;

pub async fn jwks(state: web::Data<GatewayState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=300"))
        .json(state.keys.jwks().await)
}
