//! LLM providers behind the proxy, and how a requested model maps to them.
//!
//! A model is a `provider/model` name, a bare provider name (`builtin`), or an
//! alias with an ordered list of such targets to fall back through.

pub mod builtin;
pub mod openai;

use std::collections::{BTreeMap, HashMap};

use futures_util::stream::BoxStream;
use serde::Deserialize;
use serde_json::Value;

use self::builtin::{Builtin, BuiltinSettings};
use self::openai::{OpenAi, OpenAiSettings};
use crate::request::ClientRequest;

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderSettings {
    Builtin(BuiltinSettings),
    Openai(OpenAiSettings),
}

pub enum Provider {
    Builtin(Builtin),
    OpenAi(OpenAi),
}

/// One provider and the model name to ask it for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub provider: String,
    pub model: String,
}

/// What an upstream answered before any byte reached the client.
pub enum Start {
    /// A whole `chat.completion` (JSON).
    Complete(Value),
    /// The `data:` payloads of a streamed completion, without `[DONE]`.
    Stream(BoxStream<'static, Result<String, UpstreamError>>),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// Connection failure, timeout, 429 or 5xx: worth another attempt.
    #[error("{0}")]
    Retryable(String),
    /// The upstream refused the request itself (4xx): passed to the client.
    #[error("upstream answered {status}")]
    Refused { status: u16, body: String },
    /// The stream broke after it started.
    #[error("{0}")]
    Broken(String),
}

pub struct Providers {
    providers: HashMap<String, Provider>,
    aliases: BTreeMap<String, Vec<String>>,
}

impl Providers {
    pub fn new(
        settings: &BTreeMap<String, ProviderSettings>,
        aliases: BTreeMap<String, Vec<String>>,
    ) -> anyhow::Result<Self> {
        let mut providers = HashMap::new();
        for (name, provider) in settings {
            let provider = match provider {
                ProviderSettings::Builtin(s) => Provider::Builtin(Builtin::new(s)?),
                ProviderSettings::Openai(s) => Provider::OpenAi(OpenAi::new(name, s)?),
            };
            providers.insert(name.clone(), provider);
        }
        let this = Self { providers, aliases };
        for (alias, targets) in &this.aliases {
            for target in targets {
                anyhow::ensure!(
                    this.parse_target(target).is_some(),
                    "alias '{alias}' names '{target}', which no provider serves"
                );
            }
        }
        Ok(this)
    }

    /// The targets to try, in order, for a requested model.
    pub fn resolve(&self, model: &str) -> Option<Vec<Target>> {
        match self.aliases.get(model) {
            Some(targets) => targets.iter().map(|t| self.parse_target(t)).collect(),
            None => self.parse_target(model).map(|t| vec![t]),
        }
    }

    fn parse_target(&self, name: &str) -> Option<Target> {
        let (provider, model) = name.split_once('/').unwrap_or((name, ""));
        match self.providers.get(provider)? {
            Provider::Builtin(_) => Some(Target {
                provider: provider.to_owned(),
                model: if model.is_empty() {
                    "builtin".into()
                } else {
                    model.into()
                },
            }),
            Provider::OpenAi(_) if !model.is_empty() => Some(Target {
                provider: provider.to_owned(),
                model: model.to_owned(),
            }),
            Provider::OpenAi(_) => None,
        }
    }

    /// Whether `provider` is a builtin one, whose calls cost nothing.
    pub fn is_builtin(&self, provider: &str) -> bool {
        matches!(self.providers.get(provider), Some(Provider::Builtin(_)))
    }

    /// Every model name a client may ask for, for `/v1/models`.
    pub fn model_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.aliases.keys().cloned().collect();
        for (name, provider) in &self.providers {
            match provider {
                Provider::Builtin(_) => names.push(name.clone()),
                Provider::OpenAi(p) => {
                    names.extend(p.models().iter().map(|m| format!("{name}/{m}")))
                }
            }
        }
        names.sort();
        names
    }

    /// Asks one target, streaming or not.
    pub async fn start(
        &self,
        target: &Target,
        request: &ClientRequest,
        stream: bool,
    ) -> Result<Start, UpstreamError> {
        match self.providers.get(&target.provider) {
            Some(Provider::Builtin(p)) => p.start(&target.model, &request.parsed, stream).await,
            Some(Provider::OpenAi(p)) => p.start(&target.model, request.object(), stream).await,
            None => Err(UpstreamError::Retryable(format!(
                "no provider '{}'",
                target.provider
            ))),
        }
    }
}
