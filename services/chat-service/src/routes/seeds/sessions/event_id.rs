//! The `id:` of the events on seed 000's path: a position in the whole
//! conversation, not only in one turn, so that an `EventSource` that
//! reconnects with `Last-Event-ID` after the conversation moved on to
//! another turn is given exactly what it missed.
//!
//! `R` is the `seq` of the turn's reply (the assistant message) in the
//! conversation; it grows from turn to turn.
//!
//! | id | the event | resuming after it |
//! |---|---|---|
//! | `R.E` | event `E` (1, 2, …) of turn `R` as it ran (its log) | the rest of turn `R` from its log, then the later turns |
//! | `R.sE` | event `E` of turn `R` rebuilt from storage | the rest of that rebuilt turn, then the later turns |
//! | `R.end` | the `done` of turn `R`, either way | the later turns |
//!
//! A turn rebuilt from storage is always rebuilt the same way (its reply is
//! final), so `R.sE` resumes it exactly. `R.E` resumes exactly while the
//! turn runs and for `[chat] ended_turn_linger_secs` after it ended (its
//! log is kept that long); later, or after chat-service restarted, the log
//! is gone and the turn is sent again whole, rebuilt from storage: the one
//! case in which events are repeated.
//!
//! Every string that matches [`PATTERN`] is an id ([`EventId::parse`]),
//! and every id this path hands out matches it. A well-formed id that names
//! no reply of the conversation is still a position in it: the follower
//! resumes with the turns after it (see `follow`).

use std::fmt;

use crate::error::ChatError;

/// What a `Last-Event-ID` of this path looks like, as the API document says
/// (`openapi` attributes take a literal: keep them equal to this). 18
/// digits for `R` (every such number fits an `i64`, as `seq` is), 19 for
/// `E` (fits a `u64`).
pub const PATTERN: &str = r"^[0-9]{1,18}\.(s?[0-9]{1,19}|end)$";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventId {
    /// Event `event` of turn `reply_seq`, from the turn's log.
    Live { reply_seq: i64, event: u64 },
    /// Event `event` of turn `reply_seq`, rebuilt from storage.
    Stored { reply_seq: i64, event: u64 },
    /// The `done` of turn `reply_seq`.
    End { reply_seq: i64 },
}

impl EventId {
    /// A `Last-Event-ID` (or `?last_event_id=`): exactly the strings that
    /// match [`PATTERN`]; anything else is 422 `bad_last_event_id`.
    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        let invalid = || {
            ChatError::BadLastEventId(
                "Last-Event-ID must be the id of an event of this stream (R.E, R.sE or R.end)",
            )
        };
        let (reply, event) = raw.split_once('.').ok_or_else(invalid)?;
        let reply_seq = digits(reply, 18)
            .and_then(|d| d.parse::<i64>().ok())
            .ok_or_else(invalid)?;
        if event == "end" {
            return Ok(Self::End { reply_seq });
        }
        let (stored, number) = match event.strip_prefix('s') {
            Some(number) => (true, number),
            None => (false, event),
        };
        let event = digits(number, 19)
            .and_then(|d| d.parse::<u64>().ok())
            .ok_or_else(invalid)?;
        Ok(if stored {
            Self::Stored { reply_seq, event }
        } else {
            Self::Live { reply_seq, event }
        })
    }

    pub fn reply_seq(self) -> i64 {
        match self {
            Self::Live { reply_seq, .. }
            | Self::Stored { reply_seq, .. }
            | Self::End { reply_seq } => reply_seq,
        }
    }
}

/// `s` when it is 1 to `max` ASCII digits (no sign, no space).
fn digits(s: &str, max: usize) -> Option<&str> {
    ((1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Live { reply_seq, event } => write!(f, "{reply_seq}.{event}"),
            Self::Stored { reply_seq, event } => write!(f, "{reply_seq}.s{event}"),
            Self::End { reply_seq } => write!(f, "{reply_seq}.end"),
        }
    }
}

#[cfg(test)]
mod tests {
    use confab_kit::Refusal;

    use super::*;

    #[test]
    fn ids_survive_the_round_trip() {
        for id in [
            EventId::Live {
                reply_seq: 2,
                event: 7,
            },
            EventId::Stored {
                reply_seq: 40,
                event: 1,
            },
            EventId::End { reply_seq: 4 },
        ] {
            assert_eq!(EventId::parse(&id.to_string()).unwrap(), id);
        }
        assert_eq!(
            EventId::parse("2.7").unwrap(),
            EventId::Live {
                reply_seq: 2,
                event: 7
            }
        );
    }

    #[test]
    fn ids_outside_the_pattern_are_refused() {
        for raw in [
            "",
            "7",
            "2.",
            ".7",
            "-2.7",
            "2.-7",
            "2.x",
            "2.s",
            "2.end.1",
            "2.7.1",
            " 2.7",
            "2.7 ",
            "+2.7",
            "2.s+1",
            "2.END",
            "99999999999999999999.1",
            "1234567890123456789.1",
            "1.12345678901234567890",
            "1.s12345678901234567890",
            "\u{664}.1",
        ] {
            let err = EventId::parse(raw).unwrap_err();
            assert_eq!(err.code(), "bad_last_event_id", "{raw:?}");
        }
    }

    fn matches_pattern(raw: &str) -> bool {
        regex::Regex::new(PATTERN).unwrap().is_match(raw)
    }

    proptest::proptest! {
        /// Every string of the documented form is an id, written back in
        /// the same form.
        #[test]
        fn every_string_of_the_pattern_is_an_id(
            raw in r"[0-9]{1,18}\.(s?[0-9]{1,19}|end)"
        ) {
            proptest::prop_assert!(matches_pattern(&raw));
            let id = EventId::parse(&raw).unwrap();
            proptest::prop_assert!(matches_pattern(&id.to_string()));
            proptest::prop_assert_eq!(EventId::parse(&id.to_string()).unwrap(), id);
        }

        /// Every id this path can hand out is of the documented form.
        #[test]
        fn every_id_handed_out_is_of_the_pattern(
            reply_seq in 0..=999_999_999_999_999_999i64,
            event in 0..=9_999_999_999_999_999_999u64,
            kind in 0..3u8,
        ) {
            let id = match kind {
                0 => EventId::Live { reply_seq, event },
                1 => EventId::Stored { reply_seq, event },
                _ => EventId::End { reply_seq },
            };
            let text = id.to_string();
            proptest::prop_assert!(matches_pattern(&text), "{}", text);
            proptest::prop_assert_eq!(EventId::parse(&text).unwrap(), id);
        }

        /// Nothing else is an id.
        #[test]
        fn strings_outside_the_pattern_are_refused(raw in r"[0-9s.end+ -]{0,45}|\PC{0,12}") {
            proptest::prop_assert_eq!(EventId::parse(&raw).is_ok(), matches_pattern(&raw));
        }
    }
}
