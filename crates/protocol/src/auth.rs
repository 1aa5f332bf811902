//! Identity as it travels between services (DESIGN §5).

use serde::{Deserialize, Serialize};

/// Header carrying the shared service token; identity from a caller is
/// trusted only when it comes with a valid one.
pub const SERVICE_TOKEN_HEADER: &str = "x-service-token";
pub const USER_ID_HEADER: &str = "x-user-id";
pub const USER_ROLE_HEADER: &str = "x-user-role";
pub const USER_NAME_HEADER: &str = "x-user-name";
pub const CONVERSATION_ID_HEADER: &str = "x-conversation-id";
pub const AGENT_ID_HEADER: &str = "x-agent-id";
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The personal API key a request was made with (its id, never the key),
/// trusted like `X-User-Id`: only with the service token or an agent's key.
pub const API_KEY_ID_HEADER: &str = "x-api-key-id";
/// Name of the JSON body field the gateway injects into proxied bodies.
pub const AUTH_FIELD: &str = "_auth";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses a role header value; anything unknown is treated as a plain user,
    /// never as an admin.
    pub fn parse_lenient(value: &str) -> Self {
        if value.eq_ignore_ascii_case("admin") {
            Role::Admin
        } else {
            Role::User
        }
    }
}

/// The `_auth` object the gateway injects into JSON bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthContext {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default)]
    pub role: Role,
    /// The id of the personal API key the user called with, when it was one
    /// (usage and budgets are kept per key too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
}

/// Claims of a Confab access token (EdDSA JWT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub name: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// `POST /api/v1/auth/register` body (and login's JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Credentials {
    /// At registration 3 to 32 characters: letters, digits, `_`, `.` or
    /// `-` (kept lower-case).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]*$")
    )]
    pub username: String,
    /// At registration 8 to 1,024 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: String,
}

/// Answer of login and refresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub refresh_token: String,
}

/// Answer of `GET /api/v1/auth/me` and of register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    pub id: String,
    pub username: String,
    pub role: Role,
}

/// `GET /internal/revocations` on the gateway (service token only): the
/// users whose access tokens are refused before they expire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevocationList {
    pub users: Vec<RevokedUser>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokedUser {
    pub user_id: String,
    /// Only tokens whose `iat` is later than this (Unix seconds) are
    /// valid; `i64::MAX` for a disabled account.
    pub valid_after: i64,
}
