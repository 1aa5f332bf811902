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

use confab_kit::api::Routes;

/// The routes below `/chat/conversations`.
pub fn routes(r: &mut Routes<'_>) {
    r.post("", create::create)
        .get("", list::list)
        .get("/{id}", get::get)
        .patch("/{id}", rename::rename)
        .delete("/{id}", delete::delete)
        .get("/{id}/history", history::history)
        .get("/{id}/messages", messages::list)
        .post("/{id}/messages", send::send)
        .post("/{id}/messages/stream", stream::stream)
        .get("/{id}/stream", resume::resume)
        .post("/{id}/cancel", cancel::cancel);
}
