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

use confab_kit::api::Routes;

use crate::routes::conversations;

/// The routes below `/chat/sessions`, each path also with a trailing slash.
pub fn routes(r: &mut Routes<'_>) {
    for end in ["", "/"] {
        let at = |path: &str| format!("{path}{end}");
        r.post(&at(""), create::create)
            .get(&at(""), conversations::list::list)
            .get(&at("/{id}"), conversations::get::get)
            .patch(&at("/{id}"), conversations::rename::rename)
            .delete(&at("/{id}"), conversations::delete::delete)
            .get(&at("/{id}/history"), conversations::history::history)
            .get(&at("/{id}/messages"), conversations::messages::list)
            .post(&at("/{id}/messages"), conversations::send::send)
            .post(&at("/{id}/messages/stream"), stream::stream)
            .get(&at("/{id}/messages/stream"), follow::follow)
            .post(&at("/{id}/cancel"), conversations::cancel::cancel);
    }
}
