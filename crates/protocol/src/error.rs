//! The one JSON error body every Confab service answers with (DESIGN §11).

use serde::{Deserialize, Serialize};

use crate::budget::BudgetLimit;

/// `{"error":{"code","message","request_id"}}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable, machine-readable code such as `not_found` or `message_too_long`.
    pub code: String,
    /// Human-readable explanation; never contains internal causes or secrets.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The budget a `budget_exceeded` refusal ran into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<BudgetLimit>,
    /// When that budget's period ends (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<String>,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                request_id: None,
                limit: None,
                resets_at: None,
            },
        }
    }
}
