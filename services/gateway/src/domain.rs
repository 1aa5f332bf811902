//! Credentials parsed at the edge, and how random secrets are stored.

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

/// 3–32 characters of `a-z 0-9 _ . -`, case-insensitive (kept lower-case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, GatewayError> {
        let name = raw.trim().to_lowercase();
        let valid_chars = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'));
        if !(3..=32).contains(&name.chars().count()) || !valid_chars {
            return Err(GatewayError::InvalidUsername);
        }
        Ok(Self(name))
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
        assert_eq!(Username::parse(" Ada_L ").unwrap().as_str(), "ada_l");
        for bad in ["ab", "has space", "semi;colon", &"x".repeat(33)] {
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
