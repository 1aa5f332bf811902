//! Where trace events travel on the bus: the stream `trace`, each event on
//! `trace.<agent>.<user>`. A subscriber's filter is then one subject (a
//! user's events of one agent) or one wildcard (`trace.<agent>.*`, every
//! user's, for admins), and the bus does the filtering.
//!
//! Ids become subject tokens, which may hold only letters, digits, `-` and
//! `_`. An id made of those that starts with a letter or a digit is its own
//! token (`math`, `usr-0193…`); a missing id is `_`; any other id is `_x`
//! and its bytes in hex, or, when longer than [`HEX_UP_TO`] bytes, `_s` and
//! its SHA-256 in hex (NATS limits a subject's length). So two ids never
//! share a token, and nobody can name a token that reads another user's
//! events.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

/// The stream of every trace event.
pub const STREAM: &str = "trace";

/// The longest id written out in hex: its token stays under 140 bytes.
const HEX_UP_TO: usize = 64;

/// The token of an id.
pub fn token(id: Option<&str>) -> Cow<'_, str> {
    let Some(id) = id else {
        return Cow::Borrowed("_");
    };
    let plain = id
        .bytes()
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        Cow::Borrowed(id)
    } else if id.len() <= HEX_UP_TO {
        Cow::Owned(format!("_x{}", hex(id.as_bytes())))
    } else {
        Cow::Owned(format!("_s{}", hex(&Sha256::digest(id.as_bytes()))))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The subject of an event of `agent` for `user`.
pub fn of_event(agent: Option<&str>, user: Option<&str>) -> String {
    format!("{STREAM}.{}.{}", token(agent), token(user))
}

/// What a subscriber to `agent`'s events reads: `user`'s, or (`None`)
/// every user's.
pub fn filter(agent: &str, user: Option<&str>) -> String {
    match user {
        Some(user) => of_event(Some(agent), Some(user)),
        None => format!("{STREAM}.{}.*", token(Some(agent))),
    }
}

/// A subject inside [`filter`]`(agent, user)`, where a subscriber puts its
/// marker (`subscription`).
pub fn marker(agent: &str, user: Option<&str>) -> String {
    of_event(Some(agent), user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_are_their_own_tokens_and_others_are_encoded_apart() {
        assert_eq!(token(Some("math")), "math");
        assert_eq!(token(Some("usr-0193-ab_c")), "usr-0193-ab_c");
        assert_eq!(token(None), "_");
        let odd = [
            "", "_", "-x", "a.b", "a b", "*", ">", "ü", "_x", "a*", "x.>",
        ];
        let mut seen = std::collections::HashSet::new();
        for id in odd {
            let token = token(Some(id)).into_owned();
            assert!(token.starts_with("_x"), "{id:?} → {token}");
            assert!(seen.insert(token), "{id:?} shares a token");
        }
        assert!(!seen.contains("_"));
    }

    #[test]
    fn every_subject_is_one_the_bus_accepts() {
        let long = "é".repeat(500);
        for id in [Some("math"), None, Some("a.b.*"), Some(long.as_str())] {
            let subject = of_event(id, id);
            assert_eq!(subject.split('.').count(), 3, "{subject}");
            assert!(subject.len() < 300, "{subject}");
            assert!(
                subject
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "{subject}"
            );
        }
        assert_eq!(filter("math", None), "trace.math.*");
        assert_eq!(filter("math", Some("usr-1")), "trace.math.usr-1");
    }

    #[tokio::test]
    async fn the_bus_takes_every_subject_and_filters_users_apart() {
        use actix_web::web::Bytes;
        use confab_kit::bus::{Bus, StreamSpec};
        use futures_util::StreamExt;
        let bus = Bus::in_process();
        bus.stream(&StreamSpec {
            name: STREAM.into(),
            subjects: format!("{STREAM}.>"),
            max_age: std::time::Duration::from_secs(60),
            max_bytes: 1 << 20,
        })
        .await
        .unwrap();
        let long = "u".repeat(100);
        let users = [None, Some("usr-1"), Some("a.b"), Some(long.as_str())];
        for user in users {
            bus.publish(&of_event(Some("math"), user), Bytes::from("e"))
                .await
                .unwrap();
        }
        for (n, user) in users.iter().enumerate().skip(1) {
            let mut own = bus
                .subscribe(STREAM, &filter("math", *user), 1)
                .await
                .unwrap();
            let message = own.next().await.unwrap().unwrap();
            assert_eq!(message.seq, n as u64 + 1, "{user:?}");
        }
    }
}
