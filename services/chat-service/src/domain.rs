//! Input parsed at the edge into types the rest of the service can trust.

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
    /// `raw` is the `limit` query parameter, read as a number (anything
    /// else, empty included, is 400 `bad_query` before this); absent means
    /// `default`.
    pub fn parse(raw: Option<i64>, default: i64, max: i64) -> Result<Self, ChatError> {
        match raw {
            None => Ok(Self(default)),
            Some(n) if (1..=max).contains(&n) => Ok(Self(n)),
            Some(_) => Err(ChatError::InvalidLimit { max }),
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
/// Clients see it as an opaque string, `<nanoseconds since 1970>.<id>`. The
/// time keeps every nanosecond: it has to equal the stored value exactly for
/// the `id` tie-break to apply. Any string of [`CURSOR_PATTERN`] is a
/// position, whether or not a conversation is there; every cursor
/// [`Self::encode`] writes matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationCursor {
    updated_at: NaiveDateTime,
    id: String,
}

/// What a cursor looks like, as the API document says (its attributes take
/// a literal: keep them equal to this). 19 digits reach 2286; ids are
/// `conv-` and a UUID, 41 characters of these.
pub const CURSOR_PATTERN: &str = r"^[0-9]{1,19}\.[A-Za-z0-9_-]{1,100}$";

/// The most nanoseconds a cursor holds: 19 digits.
const MAX_CURSOR_NANOS: u64 = 9_999_999_999_999_999_999;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Longest id in a cursor.
const MAX_CURSOR_ID: usize = 100;

fn cursor_id(id: &str) -> bool {
    (1..=MAX_CURSOR_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl ConversationCursor {
    /// The position right after a listed conversation. Refused (as ours, a
    /// 500) only for a time before 1970 or after 2286, or an id outside
    /// the cursor's characters, none of which the service stores.
    pub fn after(updated_at: NaiveDateTime, id: &str) -> Result<Self, ChatError> {
        let utc = updated_at.and_utc();
        let nanos = u64::try_from(utc.timestamp())
            .ok()
            .filter(|_| utc.timestamp_subsec_nanos() < 1_000_000_000)
            .and_then(|secs| secs.checked_mul(NANOS_PER_SEC))
            .and_then(|n| n.checked_add(u64::from(utc.timestamp_subsec_nanos())))
            .filter(|n| *n <= MAX_CURSOR_NANOS);
        if nanos.is_none() || !cursor_id(id) {
            return Err(ChatError::Internal(anyhow::anyhow!(
                "no cursor can say the position after {id:?} at {updated_at}"
            )));
        }
        Ok(Self {
            updated_at,
            id: id.to_owned(),
        })
    }

    /// Exactly the strings of [`CURSOR_PATTERN`]; anything else is 422
    /// `invalid_cursor`.
    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        let invalid = || ChatError::InvalidCursor;
        let (time, id) = raw.split_once('.').ok_or_else(invalid)?;
        if !(1..=19).contains(&time.len()) || !time.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        if !cursor_id(id) {
            return Err(invalid());
        }
        let nanos: u64 = time.parse().map_err(|_| invalid())?;
        let secs = i64::try_from(nanos / NANOS_PER_SEC).map_err(|_| invalid())?;
        let subsec = u32::try_from(nanos % NANOS_PER_SEC).map_err(|_| invalid())?;
        let updated_at = chrono::DateTime::from_timestamp(secs, subsec)
            .ok_or_else(invalid)?
            .naive_utc();
        Ok(Self {
            updated_at,
            id: id.to_owned(),
        })
    }

    pub fn encode(&self) -> String {
        let utc = self.updated_at.and_utc();
        // In range: both constructors make sure.
        let secs = u64::try_from(utc.timestamp()).unwrap_or_default();
        let nanos = secs * NANOS_PER_SEC + u64::from(utc.timestamp_subsec_nanos());
        format!("{nanos}.{}", self.id)
    }

    pub fn updated_at(&self) -> NaiveDateTime {
        self.updated_at
    }

    pub fn id(&self) -> &str {
        &self.id
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
        assert_eq!(PageLimit::parse(Some(1), 20, 100).unwrap().get(), 1);
        assert_eq!(PageLimit::parse(Some(100), 20, 100).unwrap().get(), 100);
        for bad in [0, -1, 101, i64::MIN, i64::MAX] {
            let err = PageLimit::parse(Some(bad), 20, 100).unwrap_err();
            assert_eq!(err.code(), "invalid_limit", "{bad}");
        }
    }

    #[test]
    fn a_cursor_survives_the_round_trip_to_the_nanosecond() {
        let updated_at = chrono::DateTime::from_timestamp(1_790_000_000, 123_456_789)
            .unwrap()
            .naive_utc();
        let cursor =
            ConversationCursor::after(updated_at, "conv-01a24610-bdd3-71ba-98f6-a51d9462ecd0")
                .unwrap();
        let encoded = cursor.encode();
        assert_eq!(
            encoded,
            "1790000000123456789.conv-01a24610-bdd3-71ba-98f6-a51d9462ecd0"
        );
        assert_eq!(ConversationCursor::parse(&encoded).unwrap(), cursor);
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let bad = [
            String::new(),
            "K\u{dc}".to_owned(),
            "no separator".to_owned(),
            "1790000000123456789.".to_owned(),
            ".conv-1".to_owned(),
            "+1.conv-1".to_owned(),
            "-1.conv-1".to_owned(),
            "12345678901234567890.conv-1".to_owned(),
            "1.conv.1".to_owned(),
            "1.conv|odd".to_owned(),
            "1.conv-1 ".to_owned(),
            format!("1.{}", "c".repeat(101)),
        ];
        for raw in bad {
            let err = ConversationCursor::parse(&raw).unwrap_err();
            assert_eq!(err.code(), "invalid_cursor", "{raw}");
        }
    }

    #[test]
    fn a_position_no_cursor_can_say_is_ours_to_fix() {
        let before_1970 = chrono::DateTime::from_timestamp(-1, 0).unwrap().naive_utc();
        assert!(ConversationCursor::after(before_1970, "conv-1").is_err());
        let now = chrono::DateTime::from_timestamp(1_790_000_000, 0)
            .unwrap()
            .naive_utc();
        assert!(ConversationCursor::after(now, "conv-0199|odd").is_err());
        assert!(ConversationCursor::after(now, "").is_err());
    }

    fn cursor_pattern() -> regex::Regex {
        regex::Regex::new(CURSOR_PATTERN).unwrap()
    }

    proptest::proptest! {
        /// Every string of the documented form is a position, written back
        /// as the same position.
        #[test]
        fn every_string_of_the_pattern_is_a_cursor(
            raw in r"[0-9]{1,19}\.[A-Za-z0-9_-]{1,100}"
        ) {
            proptest::prop_assert!(cursor_pattern().is_match(&raw));
            let cursor = ConversationCursor::parse(&raw).unwrap();
            let again = cursor.encode();
            proptest::prop_assert!(cursor_pattern().is_match(&again), "{}", again);
            proptest::prop_assert_eq!(ConversationCursor::parse(&again).unwrap(), cursor);
        }

        /// Every cursor the list can hand out is of the documented form.
        #[test]
        fn every_cursor_handed_out_is_of_the_pattern(
            nanos in 0..=MAX_CURSOR_NANOS,
            id in r"[A-Za-z0-9_-]{1,100}",
        ) {
            let secs = i64::try_from(nanos / NANOS_PER_SEC).unwrap();
            let subsec = u32::try_from(nanos % NANOS_PER_SEC).unwrap();
            let updated_at = chrono::DateTime::from_timestamp(secs, subsec).unwrap().naive_utc();
            let cursor = ConversationCursor::after(updated_at, &id).unwrap();
            let encoded = cursor.encode();
            proptest::prop_assert!(cursor_pattern().is_match(&encoded), "{}", encoded);
            proptest::prop_assert_eq!(encoded, format!("{nanos}.{id}"));
            proptest::prop_assert_eq!(ConversationCursor::parse(&cursor.encode()).unwrap(), cursor);
        }

        /// Nothing else is a cursor.
        #[test]
        fn strings_outside_the_pattern_are_refused(
            raw in r"[0-9a-z.|+ _-]{0,30}|\PC{0,12}"
        ) {
            proptest::prop_assert_eq!(
                ConversationCursor::parse(&raw).is_ok(),
                cursor_pattern().is_match(&raw)
            );
        }
    }
}
