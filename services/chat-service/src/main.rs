use confab_kit::settings::ServiceSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = chat_service::Settings::load()?;
    let _telemetry = confab_kit::telemetry::init(chat_service::SERVICE.name, &settings.telemetry)?;
    chat_service::build(settings)
        .await?
        .run_until_stopped()
        .await?;
    Ok(())
}
