//! `GET /v1/models` and `GET /v1/models/{model}`: what a caller may ask for.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;
use confab_protocol::openai::{Model, ModelList};

use crate::AppState;
use crate::auth::identify;
use crate::error::ProxyError;

/// Confab's models carry no date.
const CREATED: i64 = 0;

/// Every model and alias a caller may ask for (OpenAI's model list).
///
/// Credentials: an agent key or a user's access token as
/// `Authorization: Bearer`, or the service token.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "openai",
    security(("bearer" = []), ("service_token" = [])),
    responses((status = 200, description = "The models, `provider/model` names and aliases.", body = ModelList))
)]
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    identify(&req, &state.service_auth, &state.agent_keys).await?;
    let data = state
        .providers
        .model_names()
        .into_iter()
        .map(|id| Model::confab(id, CREATED))
        .collect();
    Ok(HttpResponse::Ok().json(ModelList::new(data)))
}

/// One model, by any name a caller may ask for: `provider/model` (the
/// slash included in the path), a bare provider name or an alias.
#[utoipa::path(
    get,
    path = "/v1/models/{model}",
    tag = "openai",
    params(("model" = String, Path, description = "The model's name; it may contain `/` (`builtin/echo`).")),
    security(("bearer" = []), ("service_token" = [])),
    responses(
        (status = 200, description = "The model.", body = Model),
        (status = 404, description = "`not_found`: no provider or alias serves that model.", body = ErrorBody)
    )
)]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    identify(&req, &state.service_auth, &state.agent_keys).await?;
    let id = path.into_inner();
    if state.providers.resolve(&id).is_none() {
        return Err(ProxyError::UnknownModel(id).into());
    }
    Ok(HttpResponse::Ok().json(Model::confab(id, CREATED)))
}
