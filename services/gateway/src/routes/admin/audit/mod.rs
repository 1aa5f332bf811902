//! `/api/v1/admin/audit…`: the audit trail, for administrators (access
//! token only). Read, page by page or whole as JSON lines; nothing here or
//! anywhere changes or removes a row.

pub mod export;
pub mod list;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{
    KnownFormat, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::{IntoParams, ToSchema};

use crate::audit::Action;
use crate::domain::{Cursor, parse_instant};
use crate::error::GatewayError;
use crate::store::audit::{AuditFilter, AuditRow};

/// `?from=&to=&actor=&action=&order=` (and for pages `cursor`, `limit`):
/// `from` and `to` RFC 3339 or `YYYY-MM-DD` (UTC), `to` exclusive; `actor`
/// an id or a username; `action` one of the trail's action names; `order`
/// `asc` (oldest first, the default) or `desc`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// From this moment on: RFC 3339, or `YYYY-MM-DD` (UTC).
    #[param(schema_with = from_schema)]
    from: Option<String>,
    /// Before this moment (exclusive): RFC 3339, or `YYYY-MM-DD` (UTC).
    #[param(schema_with = to_schema)]
    to: Option<String>,
    /// Who acted: a user's id or username (at most 64 characters).
    #[param(max_length = 64)]
    actor: Option<String>,
    /// One of the trail's action names (`login.failed`, `user.disabled`…).
    #[param(schema_with = action_schema)]
    action: Option<String>,
    /// `asc` (oldest first, the default) or `desc`.
    #[param(schema_with = order_schema)]
    order: Option<String>,
    /// The `next_cursor` of the page before (empty: from the start); the
    /// export goes on after it.
    #[param(pattern = "^(aud-[A-Za-z0-9-]{0,60})?$")]
    cursor: Option<String>,
    /// Pages only (the export has every row, and refuses it): rows per
    /// page, 1 to 1000, 100 if absent.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

// `schema_with` replaces the doc comment's description too: each schema
// carries it again.

fn from_schema() -> Schema {
    instant_schema("From this moment on: RFC 3339, or `YYYY-MM-DD` (UTC).")
}

fn to_schema() -> Schema {
    instant_schema("Before this moment (exclusive): RFC 3339, or `YYYY-MM-DD` (UTC).")
}

/// An RFC 3339 moment or a date.
fn instant_schema(description: &str) -> Schema {
    let format = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    OneOfBuilder::new()
        .description(Some(description))
        .item(format(KnownFormat::DateTime))
        .item(format(KnownFormat::Date))
        .build()
        .into()
}

/// `action`: the trail's action names, from [`Action::ALL`].
fn action_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "One of the trail's action names (`login.failed`, `user.disabled`…).",
        ))
        .enum_values(Some(Action::ALL.map(Action::as_str)))
        .build()
}

fn order_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("`asc` (oldest first, the default) or `desc`."))
        .enum_values(Some(["asc", "desc"]))
        .build()
}

impl AuditQuery {
    /// The filter the query asks for; anything unparsable is 400.
    pub fn filter(&self) -> Result<AuditFilter, GatewayError> {
        let instant = |text: &Option<String>, what| -> Result<Option<NaiveDateTime>, _> {
            text.as_deref()
                .map(|t| parse_instant(t).ok_or(GatewayError::InvalidQuery(what)))
                .transpose()
        };
        let action = match self.action.as_deref() {
            None => None,
            Some(name) => Some(
                Action::parse(name)
                    .ok_or(GatewayError::InvalidQuery(
                        "action: not an action of the trail",
                    ))?
                    .as_str()
                    .to_owned(),
            ),
        };
        let actor = self
            .actor
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty());
        if actor.is_some_and(|a| a.chars().count() > 64) {
            return Err(GatewayError::InvalidQuery("actor: an id or a username"));
        }
        Ok(AuditFilter {
            from: instant(&self.from, "from: RFC 3339 or YYYY-MM-DD")?,
            to: instant(&self.to, "to: RFC 3339 or YYYY-MM-DD")?,
            // Ids and usernames are both lower-case.
            actor: actor.map(str::to_lowercase),
            action,
            after_id: Cursor::parse(self.cursor.as_deref(), "aud")?,
            newest_first: match self.order.as_deref() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(_) => return Err(GatewayError::InvalidQuery("order: asc or desc")),
            },
        })
    }
}

/// A row as readers see it: `detail` as the JSON object it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub action: String,
    pub target_id: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// What the action was about, by action.
    #[schema(value_type = Object)]
    pub detail: Value,
}

impl From<AuditRow> for AuditView {
    fn from(row: AuditRow) -> Self {
        Self {
            detail: serde_json::from_str(&row.detail).unwrap_or(Value::Null),
            id: row.id,
            at: row.created_at.and_utc(),
            actor_id: row.actor_id,
            actor_name: row.actor_name,
            action: row.action,
            target_id: row.target_id,
            ip: row.ip,
        }
    }
}
