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

use std::fmt;

use crate::error::ChatError;

/// Longest `Last-Event-ID` read: two numbers and a separator.
const MAX_LEN: usize = 48;

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
    /// A `Last-Event-ID` (or `?last_event_id=`) as this path hands them out;
    /// anything else is 422 `bad_last_event_id`.
    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        let invalid = || {
            ChatError::BadLastEventId(
                "Last-Event-ID must be the id of an event of this stream (R.E, R.sE or R.end)",
            )
        };
        if raw.len() > MAX_LEN {
            return Err(invalid());
        }
        let (reply, event) = raw.split_once('.').ok_or_else(invalid)?;
        let reply_seq = digits(reply)
            .and_then(|d| d.parse::<i64>().ok())
            .filter(|seq| *seq >= 1)
            .ok_or_else(invalid)?;
        if event == "end" {
            return Ok(Self::End { reply_seq });
        }
        let (stored, number) = match event.strip_prefix('s') {
            Some(number) => (true, number),
            None => (false, event),
        };
        let event = digits(number)
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

/// `s` when it is one or more ASCII digits (no sign, no space).
fn digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
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
    fn ids_this_path_never_hands_out_are_refused() {
        for raw in [
            "",
            "7",
            "2.",
            ".7",
            "0.1",
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
        ] {
            let err = EventId::parse(raw).unwrap_err();
            assert_eq!(err.code(), "bad_last_event_id", "{raw:?}");
        }
        assert!(EventId::parse(&"9".repeat(MAX_LEN + 1)).is_err());
    }
}
