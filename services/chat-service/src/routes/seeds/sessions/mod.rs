//! Seed 000's chat playground: `/chat/sessions…` (the gateway's
//! `/api/chat/sessions…`), every path with or without a trailing slash
//! (the seed's client writes `sessions/` and `messages/`).
//!
//! The same resources and handlers as `/chat/conversations…` (a session is
//! a conversation), with these differences:
//! - `POST /chat/sessions` creates one even without a body;
//! - on the turn streams the streamed text is `{"type":"text_token","text"}`
//!   (the seed's client reads `data.type === 'text_token'`); every other
//!   event is the native one;
//! - those streams' ids are positions in the conversation
//!   ([`event_id`]), not only in one turn;
//! - `GET …/messages/stream` follows the conversation's turns for an
//!   `EventSource` ([`follow`]); it stands in for the native `GET …/stream`,
//!   which is not served here.

pub mod create;
pub mod encode;
pub mod event_id;
pub mod follow;
pub mod stream;

use actix_web::{Route, web};

use crate::routes::conversations;

/// The routes below `/chat/sessions`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let both = |cfg: &mut web::ServiceConfig, path: &str, route: fn() -> Route| {
        cfg.route(path, route()).route(&format!("{path}/"), route());
    };
    both(cfg, "", || web::post().to(create::create));
    both(cfg, "", || web::get().to(conversations::list::list));
    both(cfg, "/{id}", || web::get().to(conversations::get::get));
    both(cfg, "/{id}", || {
        web::patch().to(conversations::rename::rename)
    });
    both(cfg, "/{id}", || {
        web::delete().to(conversations::delete::delete)
    });
    both(cfg, "/{id}/history", || {
        web::get().to(conversations::history::history)
    });
    both(cfg, "/{id}/messages", || {
        web::get().to(conversations::messages::list)
    });
    both(cfg, "/{id}/messages", || {
        web::post().to(conversations::send::send)
    });
    both(cfg, "/{id}/messages/stream", || {
        web::post().to(stream::stream)
    });
    both(cfg, "/{id}/messages/stream", || {
        web::get().to(follow::follow)
    });
    both(cfg, "/{id}/cancel", || {
        web::post().to(conversations::cancel::cancel)
    });
}
