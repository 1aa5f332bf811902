//! llm-proxy-service as other crates' tests start it (feature `testing`):
//! the real service on port 0, on a fresh database of the test's [`Stack`].

use confab_kit::db::Db;
use confab_kit::settings::ServiceSettings;
use confab_kit::testing::Stack;

use crate::Settings;
use crate::providers::ProviderSettings;

/// A started llm-proxy-service.
pub struct Started {
    pub url: String,
    /// Its database, for tests that check what was recorded.
    pub db: Db,
}

/// llm-proxy-service with its default settings (the builtin model)
/// adjusted by `tweak`.
pub async fn start(
    stack: &mut Stack,
    tweak: impl FnOnce(&mut Settings),
) -> anyhow::Result<Started> {
    let mut settings = Settings::defaults()?;
    settings.server.port = 0;
    settings.database = stack.database("llm-proxy").await?;
    settings.bus = stack.bus();
    tweak(&mut settings);
    let server = crate::build(settings).await?;
    let db = server
        .db()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("llm-proxy-service runs without a database"))?;
    let url = stack.spawn(server);
    Ok(Started { url, db })
}

/// Makes the builtin model wait `first_chunk_ms` before an answer and
/// `chunk_ms` between its chunks, so a test can catch a turn in flight.
pub fn slow_builtin(settings: &mut Settings, first_chunk_ms: u64, chunk_ms: u64) {
    if let Some(ProviderSettings::Builtin(builtin)) = settings.providers.get_mut("builtin") {
        builtin.first_chunk_delay_ms = first_chunk_ms;
        builtin.chunk_delay_ms = chunk_ms;
    }
}

/// The calls recorded for `user`, newest first (up to 100), once there are
/// at least `expected`: the recorder writes a moment after each call, so a
/// test waits for it (at most 10 s, then answers what there is).
pub async fn recorded_calls(
    db: &Db,
    user: &str,
    expected: usize,
) -> Vec<crate::store::llm_calls::LlmCall> {
    let mut calls = Vec::new();
    for _ in 0..400 {
        calls = crate::store::llm_calls::list_for_user(db, user, 100)
            .await
            .unwrap_or_default();
        if calls.len() >= expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    calls
}
