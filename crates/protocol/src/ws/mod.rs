//! The frames of `/ws/chat` (DESIGN §9), one module per dialect: the
//! envelope one (seed 004's) and the compact one (seed 001's).

use serde::Serialize;

pub mod compact;
pub mod envelope;

/// A server frame as the text of a WebSocket message. It goes through a
/// `serde_json::Value`, whose keys are sorted at every level: the frames
/// were built as values before they had types, and clients see the same
/// bytes as then whatever the order of a type's fields.
fn to_text<T: Serialize>(frame: &T) -> String {
    // The frames hold only strings, numbers and JSON values, which always
    // encode.
    serde_json::to_value(frame)
        .map(|value| value.to_string())
        .unwrap_or_else(|_| String::from("{}"))
}
