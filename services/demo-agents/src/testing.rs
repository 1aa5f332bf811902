//! The demo agents as other crates' tests start them (feature `testing`):
//! every agent on its own port 0, thinking through a real
//! llm-proxy-service.

use std::collections::BTreeMap;

use confab_kit::settings::ServiceSettings;

use crate::Settings;

/// Every agent of the default settings, adjusted by `tweak`, calling the
/// llm-proxy-service at `llm_url`; their A2A URLs (with the trailing `/`
/// chat-service's settings use) by name. They run until the test's runtime
/// ends.
pub async fn start(
    llm_url: &str,
    tweak: impl FnOnce(&mut Settings),
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut settings = Settings::defaults()?;
    settings.llm.base_url = llm_url.to_owned();
    for agent in settings.agents.values_mut() {
        agent.port = 0;
    }
    tweak(&mut settings);
    let names: Vec<String> = settings.agents.keys().cloned().collect();
    let agents = crate::build(settings).await?;
    let mut urls = BTreeMap::new();
    for name in names {
        let port = agents
            .port(&name)
            .ok_or_else(|| anyhow::anyhow!("agent {name} did not start"))?;
        urls.insert(name, format!("http://127.0.0.1:{port}/"));
    }
    tokio::spawn(agents.run_until_stopped());
    Ok(urls)
}
