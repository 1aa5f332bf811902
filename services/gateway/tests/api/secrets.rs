//! Every service refuses to start with a development secret (or an empty
//! or short one) unless it runs in development (DESIGN §5): the secrets in
//! the defaults are published with Confab's source, and a service that
//! holds one trusts anyone who reaches its port.

use confab_kit::settings::{ServiceSettings, load_from};
use confab_kit::testing::TestDatabase;

/// A secret as an operator makes one (`openssl rand -hex 16`).
const STRONG: &str = "9c2f4e6a8b0d1f3e5a7c9e1b3d5f7a9c";

/// `S`'s built-in defaults with `vars` set, as `main` would load them with
/// no `CONFAB__ENV` (production).
fn production<S: ServiceSettings>(vars: &[(&str, &str)]) -> S {
    let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    load_from(S::DEFAULTS, None, vars).unwrap()
}

/// The start-up error of a service that refused, as its `main` prints it.
fn refusal<T>(result: anyhow::Result<T>) -> String {
    match result {
        Ok(_) => panic!("the service started"),
        Err(err) => format!("{err:#}"),
    }
}

#[tokio::test]
async fn every_service_refuses_to_start_with_the_development_secrets() {
    let database = TestDatabase::new("secrets").await.unwrap();

    let mut gateway: gateway::Settings = production(&[]);
    gateway.server.port = 0;
    gateway.database = database.settings.clone();
    let err = refusal(gateway::build(gateway).await);
    assert!(err.contains("CONFAB__AUTH__SERVICE_TOKEN"), "{err}");
    assert!(err.contains("CONFAB__ENV=development"), "{err}");
    assert!(
        !err.contains("confab-dev-service-token"),
        "no secret in a message: {err}"
    );

    let mut chat: chat_service::Settings = production(&[]);
    chat.server.port = 0;
    chat.database = database.settings.clone();
    let err = refusal(chat_service::build(chat).await);
    assert!(err.contains("CONFAB__AUTH__SERVICE_TOKEN"), "{err}");

    let mut llm: llm_proxy_service::Settings =
        production(&[("CONFAB__AUTH__SERVICE_TOKEN", STRONG)]);
    llm.server.port = 0;
    llm.database = database.settings.clone();
    let err = refusal(llm_proxy_service::build(llm).await);
    assert!(!err.contains("SERVICE_TOKEN"), "the token was set: {err}");
    for agent in ["MATH", "TEXT", "TREE"] {
        assert!(
            err.contains(&format!("CONFAB__AUTH__AGENT_KEYS__{agent}")),
            "{err}"
        );
    }

    let mut agents: demo_agents::Settings = production(&[("CONFAB__AGENTS__MATH__KEY", "short")]);
    for agent in agents.agents.values_mut() {
        agent.port = 0;
    }
    let err = refusal(demo_agents::build(agents).await);
    assert!(err.contains("agents.math.key is too short"), "{err}");
    assert!(err.contains("CONFAB__AUTH__SERVICE_TOKEN"), "{err}");
    assert!(err.contains("CONFAB__AGENTS__TREE__KEY"), "{err}");
}

#[tokio::test]
async fn a_service_with_its_own_secrets_starts_outside_development() {
    let database = TestDatabase::new("secrets").await.unwrap();
    let mut gateway: gateway::Settings = production(&[("CONFAB__AUTH__SERVICE_TOKEN", STRONG)]);
    gateway.server.port = 0;
    gateway.database = database.settings.clone();
    let running = gateway::build(gateway).await.unwrap();
    let url = format!("http://127.0.0.1:{}/health", running.port());
    tokio::spawn(running.run_until_stopped());
    assert!(reqwest::get(url).await.unwrap().status().is_success());
}
