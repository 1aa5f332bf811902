use confab_kit::settings::ServiceSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = dashboard_proxy::Settings::load()?;
    let _telemetry =
        confab_kit::telemetry::init(dashboard_proxy::SERVICE.name, &settings.telemetry)?;
    dashboard_proxy::build(settings)
        .await?
        .run_until_stopped()
        .await?;
    Ok(())
}
