//! `/chat/conversations…`: one handler per file.

pub mod cancel;
pub mod create;
pub mod delete;
pub mod get;
pub mod history;
pub mod list;
pub mod messages;
pub mod posted;
pub mod rename;
pub mod resume;
pub mod send;
pub mod stream;

use actix_web::web;

/// The routes below `/chat/conversations`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::post().to(create::create))
        .route("", web::get().to(list::list))
        .route("/{id}", web::get().to(get::get))
        .route("/{id}", web::patch().to(rename::rename))
        .route("/{id}", web::delete().to(delete::delete))
        .route("/{id}/history", web::get().to(history::history))
        .route("/{id}/messages", web::get().to(messages::list))
        .route("/{id}/messages", web::post().to(send::send))
        .route("/{id}/messages/stream", web::post().to(stream::stream))
        .route("/{id}/stream", web::get().to(resume::resume))
        .route("/{id}/cancel", web::post().to(cancel::cancel));
}
