use confab_kit::settings::ServiceSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = demo_agents::Settings::load()?;
    let _telemetry = confab_kit::telemetry::init(demo_agents::SERVICE.name, &settings.telemetry)?;
    demo_agents::build(settings)
        .await?
        .run_until_stopped()
        .await?;
    Ok(())
}
