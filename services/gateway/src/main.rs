use confab_kit::settings::ServiceSettings;

/// mimalloc: the gateway allocates and frees many small buffers per proxied
/// request (headers, bodies, futures), which glibc's malloc handles slower
/// (`infra/bench/README.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = gateway::Settings::load()?;
    let _telemetry = confab_kit::telemetry::init(gateway::SERVICE.name, &settings.telemetry)?;
    gateway::build(settings).await?.run_until_stopped().await?;
    Ok(())
}
