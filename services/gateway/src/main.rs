use confab_kit::settings::ServiceSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = gateway::Settings::load()?;
    let _telemetry = confab_kit::telemetry::init(gateway::SERVICE.name, &settings.telemetry)?;
    gateway::build(settings).await?.run_until_stopped().await?;
    Ok(())
}
