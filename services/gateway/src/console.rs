//! The web console at `/` (DESIGN §6): static files built into the binary
//! (`console/`, embedded with `rust-embed`), served with strict security
//! headers.
//!
//! Caching. Everything under `console/assets/` is served at
//! `/assets/{build}/…`, where `build` is a digest of all the console's
//! files: an asset's URL changes whenever any file does, so assets are
//! cached for a year as immutable, and the ES modules import each other by
//! relative paths that stay inside one build. The page itself
//! (`console/index.html`, its `{{build}}` replaced) is revalidated on every
//! load (`no-cache` with an `ETag`), so a new build is picked up at once.
//!
//! Deep links. A `GET` of any other path that is not an API path (not under
//! `/api/`, `/ws/`, `/assets/`, `/.well-known/`) answers the page, which
//! routes in the browser.
//!
//! Security headers on every console answer: a `Content-Security-Policy`
//! allowing only this origin's scripts, styles and connections (no inline
//! script or style, no framing), `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "console/"]
struct Files;

/// What a console answer may load: only this origin, nothing inline, in no
/// frame. `connect-src 'self'` covers the same origin's `ws://`/`wss://`.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A year: assets are addressed by build, so a URL's bytes never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Paths that are never the page: the APIs answer (or 404) there.
const NOT_PAGES: &[&str] = &["/api/", "/ws/", "/assets/", "/.well-known/"];

/// The console, read once at start-up.
pub struct Console {
    /// Digest of every file, in the assets' URLs.
    build: String,
    index: web::Bytes,
    index_etag: HeaderValue,
    /// The API reference page (`docs.html`), at `/api/docs`.
    docs: web::Bytes,
}

impl Console {
    pub fn new() -> anyhow::Result<Self> {
        let mut digest = Sha256::new();
        let mut names: Vec<_> = Files::iter().collect();
        names.sort();
        for name in &names {
            if let Some(file) = Files::get(name) {
                digest.update(name.as_bytes());
                digest.update(file.metadata.sha256_hash());
            }
        }
        let build: String = digest
            .finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        let page = |name: &str| -> anyhow::Result<web::Bytes> {
            let file =
                Files::get(name).ok_or_else(|| anyhow::anyhow!("the console has no {name}"))?;
            let page = std::str::from_utf8(&file.data)?.replace("{{build}}", &build);
            Ok(web::Bytes::from(page))
        };
        Ok(Self {
            index_etag: HeaderValue::from_str(&format!("\"{build}\""))?,
            index: page("index.html")?,
            docs: page("docs.html")?,
            build,
        })
    }

    /// The page, for `/` and deep links.
    pub fn page(&self, req: &HttpRequest) -> HttpResponse {
        self.html(req, &self.index)
    }

    /// The API reference page, revalidated like the console's.
    pub fn docs(&self, req: &HttpRequest) -> HttpResponse {
        self.html(req, &self.docs)
    }

    /// A page of this build: revalidated on every load, by the build's ETag.
    fn html(&self, req: &HttpRequest, page: &web::Bytes) -> HttpResponse {
        if not_modified(req, &self.index_etag) {
            return secured(HttpResponse::NotModified())
                .insert_header((header::ETAG, self.index_etag.clone()))
                .finish();
        }
        secured(HttpResponse::Ok())
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::ETAG, self.index_etag.clone()))
            .body(page.clone())
    }

    /// `/assets/{build}/{file}`: 404 for another build's URL (a page from
    /// before a restart reloads and gets the current one).
    pub fn asset(&self, req: &HttpRequest, build: &str, file: &str) -> HttpResponse {
        let found = (build == self.build)
            .then(|| Files::get(&format!("assets/{file}")))
            .flatten();
        let Some(found) = found else {
            return secured(HttpResponse::NotFound())
                .content_type("text/plain; charset=utf-8")
                .body("no such console file");
        };
        let etag = hex_etag(&found.metadata.sha256_hash());
        if not_modified(req, &etag) {
            return secured(HttpResponse::NotModified())
                .insert_header((header::ETAG, etag))
                .finish();
        }
        secured(HttpResponse::Ok())
            .content_type(found.metadata.mimetype())
            .insert_header((header::CACHE_CONTROL, IMMUTABLE))
            .insert_header((header::ETAG, etag))
            .body(found.data.into_owned())
    }
}

/// Whether a request the routing table does not know is a deep link into
/// the console (answered with the page) rather than an API miss (404).
pub fn is_page(req: &HttpRequest) -> bool {
    req.method() == actix_web::http::Method::GET
        && !NOT_PAGES
            .iter()
            .any(|prefix| req.path().starts_with(prefix))
}

/// The web console's page (also answered for any other `GET` that is not
/// an API path: a deep link).
#[utoipa::path(
    get,
    path = "/",
    operation_id = "console_page",
    tag = "console",
    responses(
        (status = 200, description = "The page (`Cache-Control: no-cache`, with an `ETag`).", content_type = "text/html", body = String),
        (status = 304, description = "Not modified: `If-None-Match` names the current build."),
    )
)]
pub async fn page(req: HttpRequest, console: web::Data<Console>) -> HttpResponse {
    console.page(&req)
}

/// One of the console's files, at its build's URL (cached as immutable).
#[utoipa::path(
    get,
    path = "/assets/{build}/{file}",
    operation_id = "console_asset",
    tag = "console",
    params(
        ("build" = String, Path, description = "The console's build, as the page names it."),
        ("file" = String, Path, description = "The file's path under the console's assets."),
    ),
    responses(
        (status = 200, description = "The file, of its own content type (`Cache-Control: public, max-age=31536000, immutable`).", content_type = "application/octet-stream", body = String),
        (status = 304, description = "Not modified: `If-None-Match` names the file's `ETag`."),
        (status = 404, description = "No such file in the current build (text).", content_type = "text/plain", body = String),
    )
)]
pub async fn asset(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    console: web::Data<Console>,
) -> HttpResponse {
    let (build, file) = path.into_inner();
    console.asset(&req, &build, &file)
}

fn secured(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    builder
}

fn hex_etag(hash: &[u8]) -> HeaderValue {
    let hex: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

fn not_modified(req: &HttpRequest, etag: &HeaderValue) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|sent| {
            sent.split(',')
                .any(|tag| tag.trim() == "*" || tag.trim().as_bytes() == etag.as_bytes())
        })
}
