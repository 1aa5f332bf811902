//! Credentials, pages and moments parsed at the edge, and how random
//! secrets are stored.

use sha2::{Digest, Sha256};

use crate::error::GatewayError;

/// What the database keeps of a random secret (a refresh token, an API
/// key): its SHA-256, lowercase hex. They carry 256 random bits, so a fast
/// hash suffices to keep the database from holding usable secrets.
pub fn hash_random_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 3–32 characters of `A-Z a-z 0-9 _ . -`, case-insensitive (kept
/// lower-case): exactly the published pattern, so nothing else (white
/// space, a letter that lower-cases to ASCII such as the Kelvin sign) is
/// taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, GatewayError> {
        let valid_chars = raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !(3..=32).contains(&raw.chars().count()) || !valid_chars {
            return Err(GatewayError::InvalidUsername);
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At least 8 characters; at most 1,024 so hashing cannot be made expensive.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: String) -> Result<Self, GatewayError> {
        let chars = raw.chars().count();
        if chars < 8 {
            return Err(GatewayError::WeakPassword);
        }
        if chars > 1024 {
            return Err(GatewayError::PasswordTooLong);
        }
        Ok(Self(raw))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_case_insensitive_and_restricted() {
        assert_eq!(Username::parse("Ada_L").unwrap().as_str(), "ada_l");
        for bad in [
            "ab",
            "has space",
            " ada",
            "semi;colon",
            "\u{212A}elvin",
            &"x".repeat(33),
        ] {
            assert!(Username::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn passwords_need_eight_characters_and_never_print() {
        assert!(Password::parse("1234567".into()).is_err());
        let password = Password::parse("correct horse".into()).unwrap();
        assert_eq!(format!("{password:?}"), "Password(***)");
    }
}

/// A page's continuation as clients send it back: the last id they saw,
/// checked to be one of ours (its prefix, a bounded length).
pub struct Cursor;

impl Cursor {
    /// `None` for the first page; a cursor that is not an id of `prefix`
    /// is 400 `bad_query`.
    pub fn parse(cursor: Option<&str>, prefix: &str) -> Result<Option<String>, GatewayError> {
        let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let ours = cursor.len() <= 64
            && cursor
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('-'))
            && cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        match ours {
            true => Ok(Some(cursor.to_owned())),
            false => Err(GatewayError::InvalidQuery(
                "cursor: the next_cursor of a page",
            )),
        }
    }
}

/// How many rows a page holds: the client's `limit` within bounds.
#[derive(Debug, Clone, Copy)]
pub struct PageSize(i64);

impl PageSize {
    /// `limit` (else `default`), from 1 to `max`; anything else is 400.
    pub fn parse(limit: Option<i64>, default: i64, max: i64) -> Result<Self, GatewayError> {
        match limit.unwrap_or(default) {
            n if (1..=max).contains(&n) => Ok(Self(n)),
            _ => Err(GatewayError::InvalidQuery("limit: out of range")),
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// The cursor of the page after `rows`: the last one's id when the page
    /// is full, else none (this was the last page).
    pub fn next_cursor<T>(self, rows: &[T], id: impl Fn(&T) -> &String) -> Option<String> {
        let full = i64::try_from(rows.len()).is_ok_and(|n| n == self.0);
        full.then(|| rows.last().map(|row| id(row).clone()))
            .flatten()
    }
}

/// A moment in a query: RFC 3339, or a date (`YYYY-MM-DD`, its midnight
/// UTC).
pub fn parse_instant(text: &str) -> Option<chrono::NaiveDateTime> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(at.naive_utc());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
}
