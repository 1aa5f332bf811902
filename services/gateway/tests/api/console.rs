//! The web console at `/`: served from the binary with strict security
//! headers, assets cached by build, deep links answered with the page, API
//! paths never.

use confab_kit::settings::ServiceSettings;
use confab_kit::testing::TestDatabase;

struct Gateway {
    url: String,
    http: reqwest::Client,
    _database: TestDatabase,
}

impl Gateway {
    async fn start() -> Self {
        let database = TestDatabase::new("gateway").await.unwrap();
        let mut settings = gateway::Settings::defaults().unwrap();
        settings.server.port = 0;
        settings.database = database.settings.clone();
        let running = gateway::build(settings).await.unwrap();
        let url = format!("http://127.0.0.1:{}", running.port());
        tokio::spawn(running.run_until_stopped());
        Self {
            url,
            http: reqwest::Client::new(),
            _database: database,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
    }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap())
}

/// The strict headers every console answer carries.
fn assert_secured(response: &reqwest::Response) {
    let csp = header(response, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "nothing inline or eval'd: {csp}");
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    assert_eq!(header(response, "referrer-policy"), "no-referrer");
}

/// The `/assets/{build}/…` URLs a page loads.
fn asset_urls(page: &str) -> Vec<String> {
    page.split(['"', '\''])
        .filter(|part| part.starts_with("/assets/"))
        .map(str::to_owned)
        .collect()
}

/// Modules the console imports when it first needs them and does without
/// when a build lacks them (their screen or panel then says so).
const OPTIONAL_MODULES: &[&str] = &[
    "/views/trace.js",
    "/views/calls.js",
    "/views/tree.js",
    "/chat-socket.js",
];

/// The relative specifiers a module imports, statically (`… from "./x.js"`)
/// or dynamically (`import("./x.js")`).
fn imports(module: &str) -> Vec<String> {
    ["from \"", "import(\""]
        .iter()
        .flat_map(|marker| module.split(marker).skip(1))
        .filter_map(|rest| rest.split('"').next())
        .filter(|spec| spec.starts_with("./") || spec.starts_with("../"))
        .map(str::to_owned)
        .collect()
}

/// `spec` (`./a.js`, `../b.js`) relative to the directory URL `base`.
fn resolve(base: &str, spec: &str) -> String {
    let mut parts: Vec<&str> = base.split('/').collect();
    for part in spec.split('/') {
        match part {
            "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

#[tokio::test]
async fn the_page_is_served_at_the_root_with_strict_headers_and_no_inline_code() {
    let gateway = Gateway::start().await;
    let response = gateway.get("/").await;
    assert_eq!(response.status(), 200);
    assert_secured(&response);
    assert!(header(&response, "content-type").starts_with("text/html"));
    assert_eq!(header(&response, "cache-control"), "no-cache");
    let etag = header(&response, "etag").to_owned();
    assert!(etag.starts_with('"'), "{etag}");
    let page = response.text().await.unwrap();
    assert!(!page.contains("{{build}}"));
    assert!(!page.contains("<style"), "no inline style element");
    assert!(!page.contains("style="), "no inline style attribute");
    for script in page.split("<script").skip(1) {
        assert!(script.contains("src="), "no inline script: <script{script}");
    }
    assert!(!page.contains(" on"), "no inline event handler");

    let again = gateway
        .http
        .get(format!("{}/", gateway.url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn assets_are_cached_by_build_and_their_modules_resolve() {
    let gateway = Gateway::start().await;
    let page = gateway.get("/").await.text().await.unwrap();
    let urls = asset_urls(&page);
    let script = urls.iter().find(|u| u.ends_with("/app.js")).unwrap();
    assert!(urls.iter().any(|u| u.ends_with("/style.css")), "{urls:?}");
    for url in &urls {
        let response = gateway.get(url).await;
        assert_eq!(response.status(), 200, "{url}");
        assert_secured(&response);
        assert_eq!(
            header(&response, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        let etag = header(&response, "etag").to_owned();
        let again = gateway
            .http
            .get(format!("{}{url}", gateway.url))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{url}");
    }

    // Every module the app imports, however deep, is in the same build.
    let app = gateway.get(script).await;
    assert!(header(&app, "content-type").contains("javascript"));
    let directory = script.rsplit_once('/').unwrap().0.to_owned();
    let mut seen = std::collections::BTreeSet::new();
    let mut pending = vec![script.clone()];
    while let Some(url) = pending.pop() {
        if !seen.insert(url.clone()) {
            continue;
        }
        let module = gateway.get(&url).await;
        let optional = OPTIONAL_MODULES.iter().any(|m| url.ends_with(m));
        if optional && module.status() == 404 {
            continue;
        }
        assert_eq!(module.status(), 200, "{url}");
        assert!(
            header(&module, "content-type").contains("javascript"),
            "{url}"
        );
        let text = module.text().await.unwrap();
        let base = url.rsplit_once('/').unwrap().0;
        for import in imports(&text) {
            pending.push(resolve(base, &import));
        }
    }
    assert!(seen.len() > 5, "the app's modules: {seen:?}");
    assert!(
        seen.iter().all(|url| url.starts_with(&directory)),
        "{seen:?}"
    );

    // Another build's URL, or a file that is not there, is not found.
    let stale = script.replacen(&directory, "/assets/000000000000", 1);
    assert_eq!(gateway.get(&stale).await.status(), 404);
    assert_eq!(
        gateway
            .get(&format!("{directory}/nothing.js"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn deep_links_get_the_page_and_api_paths_never_do() {
    let gateway = Gateway::start().await;
    for path in [
        "/c/conv-123",
        "/trace/math",
        "/calls/call-1",
        "/account",
        "/no/such/screen",
    ] {
        let response = gateway.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(header(&response, "content-type").starts_with("text/html"));
        assert_secured(&response);
    }
    for path in [
        "/api/v1/nothing",
        "/ws/nothing",
        "/.well-known/nothing",
        "/assets/nothing",
    ] {
        let response = gateway.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            !header(&response, "content-type").starts_with("text/html"),
            "{path}"
        );
    }
    // A page is only ever read: other methods on an unknown path are 404.
    let posted = gateway
        .http
        .post(format!("{}/conversations", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 404);
}
