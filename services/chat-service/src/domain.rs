//! Input parsed at the edge into types the rest of the service can trust.

use confab_kit::ApiError;

/// The text of a user message: not blank, at most the configured number of
/// characters (characters, not bytes, so every script gets the same room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(text: String, max_chars: usize) -> Result<Self, ApiError> {
        if text.trim().is_empty() {
            return Err(ApiError::unprocessable(
                "empty_message",
                "the message is empty",
            ));
        }
        let chars = text.chars().count();
        if chars > max_chars {
            return Err(ApiError::payload_too_large(
                "message_too_long",
                format!("the message has {chars} characters; at most {max_chars} are allowed"),
            ));
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
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
}
