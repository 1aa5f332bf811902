//! `POST /api/v1/api-keys {"name", "scopes": ["chat"|"llm"|"read", …],
//! "expires_in"?}`: a new key for the caller, answered once with the key
//! itself (201 `{id, name, prefix, scopes, created_at, last_used_at,
//! expires_at, key}`); afterwards only its prefix is ever shown.
//! `expires_in` is in seconds; without it the key lives until revoked.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{TimeDelta, Utc};
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::KeyView;
use crate::GatewayState;
use crate::api_keys::{NewKey, Scope, Scopes};
use crate::audit::{self, Action, Actor};
use crate::auth::authenticate;
use crate::error::GatewayError;
use crate::routes::auth::body;
use crate::store::api_keys::{self, ApiKeyRow};

/// A key's name: what its owner calls it, shown in lists.
const NAME_CHARS: usize = 64;
/// The longest lifetime a key may be given: ten years, in seconds. A key
/// meant to live longer is given none.
const MAX_EXPIRES_IN: i64 = 10 * 366 * 24 * 3600;

/// A new key: what it is called, what it may do, how long it lives.
#[derive(Debug, Deserialize, ToSchema)]
struct CreateKey {
    /// 1 to 64 characters, not only white space (which is trimmed).
    #[schema(min_length = 1, max_length = 64, pattern = r"\S")]
    name: String,
    /// At least one.
    #[schema(min_items = 1)]
    scopes: Vec<Scope>,
    /// Seconds, from 1 to ten years; absent or null: until revoked.
    #[serde(default, deserialize_with = "confab_protocol::budget::whole_number")]
    #[schema(minimum = 1, maximum = 316_224_000_i64)]
    expires_in: Option<i64>,
}

/// A key just made, with the key itself.
#[derive(Debug, Serialize, ToSchema)]
struct CreatedKey {
    #[serde(flatten)]
    view: KeyView,
    /// The key itself, shown this once.
    key: String,
}

/// A new API key for the caller, answered this once with the key itself.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    operation_id = "create_api_key",
    tag = "api-keys",
    request_body = CreateKey,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, description = "The key, with the key itself (shown only now).", body = CreatedKey),
        (status = 403, description = "`api_key_not_allowed`: an API key; `csrf_rejected`: by cookie, from an origin the gateway does not trust.", body = ErrorBody),
        (status = 409, description = "`too_many_api_keys`: the caller holds the most live keys allowed (`[limits] api_keys_per_user`); revoke one first.", body = ErrorBody),
        (status = 422, description = "`invalid_body`: a `name` not of 1 to 64 characters, no or unknown `scopes`, an `expires_in` not from 1 s to ten years, or JSON not of the documented shape.", body = ErrorBody),
    )
)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let user = authenticate(&req, &state.keys, &state.browser).await?;
    let request: CreateKey = body::json(&body)?;
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > NAME_CHARS {
        return Err(GatewayError::InvalidRequest("name: 1 to 64 characters").into());
    }
    let scopes = Scopes::new(&request.scopes)?;
    let now = Utc::now().naive_utc();
    let expires_at = match request.expires_in {
        None => None,
        Some(secs) if (1..=MAX_EXPIRES_IN).contains(&secs) => Some(now + TimeDelta::seconds(secs)),
        Some(_) => {
            return Err(GatewayError::InvalidRequest(
                "expires_in: seconds, from 1 to ten years (or none: until revoked)",
            )
            .into());
        }
    };
    let held = api_keys::count_live(&state.db, &user.sub).await?;
    if usize::try_from(held).unwrap_or(usize::MAX) >= state.api_keys_per_user {
        return Err(GatewayError::TooManyApiKeys(state.api_keys_per_user).into());
    }
    let new = NewKey::generate();
    let row = ApiKeyRow {
        id: confab_kit::ids::new_id("key"),
        user_id: user.sub.clone(),
        name: name.to_owned(),
        prefix: new.prefix,
        key_hash: new.hash,
        scopes: scopes.to_stored(),
        created_at: now,
        last_used_at: None,
        expires_at,
        revoked_at: None,
    };
    api_keys::insert(&state.db, &row).await?;
    tracing::info!(user_id = %user.sub, key_id = %row.id, scopes = %row.scopes, "API key created");
    let detail = json!({"name": row.name, "prefix": row.prefix, "scopes": row.scopes});
    let actor = Actor::user(&user.sub, &user.name);
    audit::record(
        &state,
        &req,
        actor,
        Action::ApiKeyCreated,
        Some(&row.id),
        detail,
    )
    .await?;
    Ok(HttpResponse::Created().json(CreatedKey {
        view: KeyView::from(row),
        key: new.key,
    }))
}
