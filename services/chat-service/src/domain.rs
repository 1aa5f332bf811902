//! Input parsed at the edge into types the rest of the service can trust.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;

use crate::error::ChatError;

/// The text of a user message: not blank, at most the configured number of
/// characters (characters, not bytes, so every script gets the same room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(text: String, max_chars: usize) -> Result<Self, ChatError> {
        if text.trim().is_empty() {
            return Err(ChatError::EmptyMessage);
        }
        let chars = text.chars().count();
        if chars > max_chars {
            return Err(ChatError::MessageTooLong {
                chars,
                max: max_chars,
            });
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Longest conversation title, in characters: a sentence, not a document; a
/// sidebar shows the start of it.
pub const MAX_TITLE_CHARS: usize = 200;

/// A conversation's title: trimmed, not blank, at most [`MAX_TITLE_CHARS`]
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationTitle(String);

impl ConversationTitle {
    /// The title of a conversation created without one.
    pub fn untitled() -> Self {
        Self("New conversation".to_owned())
    }

    pub fn parse(title: &str) -> Result<Self, ChatError> {
        let title = title.trim();
        if title.is_empty() {
            return Err(ChatError::EmptyTitle);
        }
        let chars = title.chars().count();
        if chars > MAX_TITLE_CHARS {
            return Err(ChatError::TitleTooLong {
                chars,
                max: MAX_TITLE_CHARS,
            });
        }
        Ok(Self(title.to_owned()))
    }

    /// The title of a conversation its first message creates: the start of
    /// the message on one line (runs of white space made one space), cut at
    /// [`MAX_TITLE_CHARS`].
    pub fn from_message(text: &MessageText) -> Self {
        let line = text
            .as_str()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let start: String = line.chars().take(MAX_TITLE_CHARS).collect();
        match Self::parse(&start) {
            Ok(title) => title,
            Err(_) => Self::untitled(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// How many items one page of a list holds: from 1 to the list's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(i64);

impl PageLimit {
    /// `raw` is the `limit` query parameter; absent or empty means `default`.
    pub fn parse(raw: Option<&str>, default: i64, max: i64) -> Result<Self, ChatError> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(Self(default));
        };
        match raw.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(Self(n)),
            _ => Err(ChatError::InvalidLimit { max }),
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Where a page of the conversation list ended: the last conversation's
/// `updated_at` and `id` (a keyset position, so a conversation that moves
/// meanwhile never makes the next page repeat or skip the others).
///
/// Clients see it as an opaque string, base64url (no padding) of
/// `"<updated_at>|<id>"`. The time keeps all nine fractional digits: it has to
/// equal the stored value exactly for the `id` tie-break to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationCursor {
    pub updated_at: NaiveDateTime,
    pub id: String,
}

/// Format of the time inside a cursor.
const CURSOR_TIME: &str = "%Y-%m-%dT%H:%M:%S%.9f";

/// Longest cursor accepted, in bytes: far more than a real one (about 90).
const MAX_CURSOR_LEN: usize = 512;

impl ConversationCursor {
    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        let invalid = || ChatError::InvalidCursor;
        if raw.len() > MAX_CURSOR_LEN {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (time, id) = text.split_once('|').ok_or_else(invalid)?;
        let updated_at = NaiveDateTime::parse_from_str(time, CURSOR_TIME).map_err(|_| invalid())?;
        if id.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            updated_at,
            id: id.to_owned(),
        })
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}|{}",
            self.updated_at.format(CURSOR_TIME),
            self.id
        ))
    }
}

#[cfg(test)]
mod tests {
    use confab_kit::Refusal;

    use super::*;

    #[test]
    fn blank_messages_are_refused() {
        for text in ["", "   ", "\n\t"] {
            let err = MessageText::parse(text.into(), 10).unwrap_err();
            assert_eq!(err.code(), "empty_message");
        }
    }

    #[test]
    fn the_limit_counts_characters_not_bytes() {
        assert!(MessageText::parse("é".repeat(10), 10).is_ok());
        let err = MessageText::parse("é".repeat(11), 10).unwrap_err();
        assert_eq!(err.code(), "message_too_long");
    }

    #[test]
    fn titles_are_trimmed_and_must_not_be_blank() {
        assert_eq!(
            ConversationTitle::parse("  Sums \n").unwrap().as_str(),
            "Sums"
        );
        for blank in ["", "   ", "\n\t"] {
            let err = ConversationTitle::parse(blank).unwrap_err();
            assert_eq!(err.code(), "empty_title");
        }
    }

    #[test]
    fn a_title_holds_two_hundred_characters_not_bytes() {
        assert!(ConversationTitle::parse(&"é".repeat(200)).is_ok());
        assert!(ConversationTitle::parse(&format!("  {}  ", "t".repeat(200))).is_ok());
        let err = ConversationTitle::parse(&"é".repeat(201)).unwrap_err();
        assert_eq!(err.code(), "title_too_long");
    }

    #[test]
    fn page_limits_outside_the_range_are_refused() {
        assert_eq!(PageLimit::parse(None, 20, 100).unwrap().get(), 20);
        assert_eq!(PageLimit::parse(Some(""), 20, 100).unwrap().get(), 20);
        assert_eq!(PageLimit::parse(Some("100"), 20, 100).unwrap().get(), 100);
        for bad in ["0", "-1", "101", "ten", "1.5", " 5"] {
            let err = PageLimit::parse(Some(bad), 20, 100).unwrap_err();
            assert_eq!(err.code(), "invalid_limit", "{bad}");
        }
    }

    #[test]
    fn a_cursor_survives_the_round_trip_to_the_nanosecond() {
        let updated_at = chrono::DateTime::from_timestamp(1_790_000_000, 123_456_789)
            .unwrap()
            .naive_utc();
        let cursor = ConversationCursor {
            updated_at,
            id: "conv-0199|odd".into(),
        };
        let encoded = cursor.encode();
        assert!(
            encoded
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{encoded} is safe in a URL as it is"
        );
        assert_eq!(ConversationCursor::parse(&encoded).unwrap(), cursor);
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let encode = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let bad = [
            "not base64!".to_owned(),
            encode("no separator"),
            encode("yesterday|conv-1"),
            encode("2026-11-23T10:00:00.000000000|"),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe, b'|']),
            "A".repeat(MAX_CURSOR_LEN + 1),
        ];
        for raw in bad {
            let err = ConversationCursor::parse(&raw).unwrap_err();
            assert_eq!(err.code(), "invalid_cursor", "{raw}");
        }
    }
}
