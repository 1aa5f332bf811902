use confab_kit::settings::ServiceSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = llm_proxy_service::Settings::load()?;
    let _telemetry =
        confab_kit::telemetry::init(llm_proxy_service::SERVICE.name, &settings.telemetry)?;
    llm_proxy_service::build(settings)
        .await?
        .run_until_stopped()
        .await?;
    Ok(())
}
