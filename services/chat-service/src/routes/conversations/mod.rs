//! `/chat/conversations…`: one handler per file.

pub mod cancel;
pub mod create;
pub mod messages;
pub mod stream;

use actix_web::web;

/// The routes below `/chat/conversations`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::post().to(create::create))
        .route("/{id}/messages", web::get().to(messages::list))
        .route("/{id}/messages/stream", web::post().to(stream::stream))
        .route("/{id}/cancel", web::post().to(cancel::cancel));
}
