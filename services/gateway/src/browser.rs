//! Sign-in that fits browsers (DESIGN §5 "Browsers", `[browser]`).
//!
//! **The console marker.** A request carrying `X-Confab-Client: console` is
//! the web console. With it, login and refresh answer
//! `{"access_token","token_type","expires_in"}` (no `refresh_token`) and set
//! two cookies; without it, and without the cookies, the auth endpoints
//! answer API clients exactly as before.
//!
//! **The cookies**, both host-only (no `Domain`), `HttpOnly` (no script can
//! read them) and `SameSite=Strict` (no other site's page makes the browser
//! send them), `Secure` when the request came over HTTPS (the connection's
//! scheme, `Forwarded: proto=https` or `X-Forwarded-Proto: https`) or
//! `[browser] secure_cookies` is set:
//! - [`REFRESH_COOKIE`] `confab_refresh`: the refresh token, `Path=/api/v1/auth`
//!   (sent only to the auth endpoints), `Max-Age` = `[auth]
//!   refresh_token_ttl_secs`;
//! - [`ACCESS_COOKIE`] `confab_access`: the access JWT, `Path=/`, `Max-Age` =
//!   `[auth] access_token_ttl_secs`. The gateway accepts it wherever it
//!   accepts `Authorization: Bearer` (which wins when both are there), so
//!   `EventSource` and WebSocket need no token in the URL.
//!
//! Signing out answers both with `Max-Age=0` and the same attributes.
//!
//! **CSRF.** A request authenticated by one of these cookies whose method is
//! not `GET`, `HEAD` or `OPTIONS`, every WebSocket upgrade authenticated by
//! the access cookie (cross-site WebSocket hijacking), and every request
//! that gets cookies set or cleared (the console's login, refresh and logout)
//! must pass [`Browser::check_origin`]: an `Origin` equal to the gateway's own
//! origin as the request names it (scheme and `Host`, or `Forwarded` /
//! `X-Forwarded-Proto` / `X-Forwarded-Host` as a reverse proxy sets them) or
//! listed in `[browser] trusted_origins`; with no `Origin` at all, the console
//! marker. Else 403 `csrf_rejected`. The marker counts because another site's
//! page cannot add a custom header to a request without a CORS preflight,
//! which the gateway never grants for it (see `cors`). Requests
//! authenticated by `Authorization` or `?token=` are not affected: a browser
//! never adds those on its own.
//!
//! **Upstream.** The gateway's cookies never leave it: [`strip_cookies`]
//! takes them out of the `Cookie` header of every proxied request and
//! WebSocket handshake.

use actix_web::HttpRequest;
use actix_web::cookie::time::Duration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::Method;
use serde::Deserialize;

use crate::error::GatewayError;

/// The header that marks the web console, and its value.
pub const CLIENT_HEADER: &str = "x-confab-client";
pub const CONSOLE: &str = "console";

/// The access token's cookie.
pub const ACCESS_COOKIE: &str = "confab_access";
/// The refresh token's cookie, sent only to [`REFRESH_COOKIE_PATH`].
pub const REFRESH_COOKIE: &str = "confab_refresh";
pub const REFRESH_COOKIE_PATH: &str = "/api/v1/auth";
const ACCESS_COOKIE_PATH: &str = "/";

/// `[browser]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BrowserSettings {
    /// Origins besides the gateway's own whose pages may send
    /// cookie-authenticated requests (say the console served by another
    /// front end of the same site). Empty (the default): the gateway's own
    /// origin only. `"*"` is refused: it would turn the CSRF check off.
    #[serde(default)]
    pub trusted_origins: Vec<String>,
    /// Mark the cookies `Secure` even on a plain-HTTP request: behind a TLS
    /// terminator that does not say `X-Forwarded-Proto: https`.
    #[serde(default)]
    pub secure_cookies: bool,
}

/// The validated `[browser]` settings and the lifetimes of the cookies.
#[derive(Debug, Clone)]
pub struct Browser {
    /// ASCII serialisations of the trusted origins (`https://a.example`).
    trusted: Vec<String>,
    secure_cookies: bool,
    access_ttl_secs: i64,
    refresh_ttl_secs: i64,
}

impl Browser {
    pub fn new(
        settings: &BrowserSettings,
        access_ttl_secs: i64,
        refresh_ttl_secs: i64,
    ) -> anyhow::Result<Self> {
        let trusted = settings
            .trusted_origins
            .iter()
            .map(|origin| {
                let parsed = reqwest::Url::parse(origin)
                    .ok()
                    .filter(|url| url.path() == "/" && !origin.ends_with('/'))
                    .filter(|url| url.query().is_none() && url.fragment().is_none())
                    .map(|url| url.origin())
                    .filter(|origin| origin.is_tuple());
                parsed.map(|o| o.ascii_serialization()).ok_or_else(|| {
                    anyhow::anyhow!(
                        "[browser] trusted_origins: {origin:?} is not an origin like https://app.example.com"
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            trusted,
            secure_cookies: settings.secure_cookies,
            access_ttl_secs,
            refresh_ttl_secs,
        })
    }

    /// Refuses a request that may not use the cookies: its `Origin` is
    /// neither the gateway's own nor trusted, or it has none and is not the
    /// console.
    pub fn check_origin(&self, req: &HttpRequest) -> Result<(), GatewayError> {
        let mut origins = req.headers().get_all("origin");
        let (Some(origin), None) = (origins.next(), origins.next()) else {
            return match is_console(req) && !req.headers().contains_key("origin") {
                true => Ok(()),
                false => Err(GatewayError::CsrfRejected),
            };
        };
        let origin = origin
            .to_str()
            .ok()
            .and_then(serialized_origin)
            .ok_or(GatewayError::CsrfRejected)?;
        if own_origin(req).as_deref() == Some(origin.as_str()) || self.trusted.contains(&origin) {
            return Ok(());
        }
        Err(GatewayError::CsrfRejected)
    }

    /// [`Self::check_origin`] where the method changes state; a WebSocket
    /// upgrade always (its `GET` opens a two-way channel).
    pub fn check_cookie_request(
        &self,
        req: &HttpRequest,
        upgrade: bool,
    ) -> Result<(), GatewayError> {
        let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        if safe && !upgrade {
            return Ok(());
        }
        self.check_origin(req)
    }

    /// The two cookies of a signed-in console.
    pub fn session_cookies(
        &self,
        req: &HttpRequest,
        access_token: String,
        refresh_token: String,
    ) -> [Cookie<'static>; 2] {
        let secure = self.secure(req);
        [
            cookie(
                ACCESS_COOKIE,
                access_token,
                ACCESS_COOKIE_PATH,
                self.access_ttl_secs,
                secure,
            ),
            cookie(
                REFRESH_COOKIE,
                refresh_token,
                REFRESH_COOKIE_PATH,
                self.refresh_ttl_secs,
                secure,
            ),
        ]
    }

    /// Both cookies emptied with `Max-Age=0` (and an `Expires` in the past),
    /// with the attributes they were set with, so the browser drops them.
    pub fn removal_cookies(&self, req: &HttpRequest) -> [Cookie<'static>; 2] {
        let secure = self.secure(req);
        [
            (ACCESS_COOKIE, ACCESS_COOKIE_PATH),
            (REFRESH_COOKIE, REFRESH_COOKIE_PATH),
        ]
        .map(|(name, path)| {
            let mut removal = cookie(name, String::new(), path, 0, secure);
            removal.make_removal();
            removal
        })
    }

    fn secure(&self, req: &HttpRequest) -> bool {
        self.secure_cookies || req.connection_info().scheme().eq_ignore_ascii_case("https")
    }
}

fn cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    max_age_secs: i64,
    secure: bool,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(Duration::seconds(max_age_secs))
        .finish()
}

/// Whether the request carries the console marker.
pub fn is_console(req: &HttpRequest) -> bool {
    req.headers()
        .get(CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(CONSOLE))
}

/// The access token of the [`ACCESS_COOKIE`], when the request has one.
pub fn access_cookie(req: &HttpRequest) -> Option<String> {
    cookie_value(req, ACCESS_COOKIE)
}

/// The refresh token of the [`REFRESH_COOKIE`], when the request has one.
pub fn refresh_cookie(req: &HttpRequest) -> Option<String> {
    cookie_value(req, REFRESH_COOKIE)
}

/// The first non-empty cookie of that name, its name and value taken as
/// sent (not percent-decoded: the name must match as [`strip_cookies`]
/// matches it, so a cookie the gateway reads is one it strips).
fn cookie_value(req: &HttpRequest, name: &str) -> Option<String> {
    let cookies = req.cookies_raw().ok()?;
    cookies
        .iter()
        .filter(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().trim())
        .find(|value| !value.is_empty())
        .map(str::to_owned)
}

/// `scheme://host[:port]` of a URL or origin, the default port left out;
/// none for an opaque origin (`null`, `file:`, `data:`).
fn serialized_origin(url: &str) -> Option<String> {
    let origin = reqwest::Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// The gateway's origin as this request names it.
fn own_origin(req: &HttpRequest) -> Option<String> {
    let info = req.connection_info();
    serialized_origin(&format!("{}://{}", info.scheme(), info.host()))
}

/// A `Cookie` header's value without the gateway's cookies; none when
/// nothing else is left. Pairs are kept byte for byte, in order.
pub fn strip_cookies(value: &[u8]) -> Option<Vec<u8>> {
    let kept: Vec<&[u8]> = value
        .split(|&b| b == b';')
        .map(<[u8]>::trim_ascii)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
            let name = name.trim_ascii();
            name != ACCESS_COOKIE.as_bytes() && name != REFRESH_COOKIE.as_bytes()
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join(&b"; "[..]))
}

#[cfg(test)]
mod tests {
    use confab_kit::Refusal;

    use super::*;
    use actix_web::test::TestRequest;

    fn browser(trusted: &[&str]) -> Browser {
        let settings = BrowserSettings {
            trusted_origins: trusted.iter().map(|o| (*o).to_owned()).collect(),
            secure_cookies: false,
        };
        Browser::new(&settings, 1800, 2_592_000).unwrap()
    }

    #[test]
    fn the_gateways_cookies_are_taken_out_and_the_rest_kept_in_order() {
        let strip = |v: &str| strip_cookies(v.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(
            strip("a=1; confab_access=x.y.z;b=2 ;  confab_refresh=r; c").as_deref(),
            Some("a=1; b=2; c")
        );
        assert_eq!(strip("confab_access=x; confab_refresh=y"), None);
        assert_eq!(strip(" confab_access = x ;"), None);
        assert_eq!(strip(""), None);
        assert_eq!(
            strip("confab_accessory=1; Confab_access=2").as_deref(),
            Some("confab_accessory=1; Confab_access=2")
        );
        let binary = strip_cookies(b"a=\xff; confab_access=t").unwrap();
        assert_eq!(binary, b"a=\xff");
    }

    #[test]
    fn fuzz_no_cookie_the_gateway_reads_survives_stripping() {
        use confab_kit::fuzz;
        use proptest::prelude::*;
        let samples = [
            "a=1; confab_access=x.y.z; b=2",
            "confab_refresh=abc;confab_access=\"q\"; c",
            " confab_access =v ; =x; ;; confab_refresh",
            "https://evil.example",
        ]
        .map(str::to_owned)
        .to_vec();
        let browser = browser(&["https://console.example"]);
        fuzz::fuzz(fuzz::client_text(samples), |text| {
            let Ok(value) = actix_web::http::header::HeaderValue::from_str(&text) else {
                return Ok(());
            };
            let request = TestRequest::post()
                .insert_header(("cookie", value.clone()))
                .insert_header(("origin", value.clone()))
                .to_http_request();
            let _ = browser.check_origin(&request);
            let Some(stripped) = strip_cookies(value.as_bytes()) else {
                return Ok(());
            };
            let forwarded = TestRequest::default()
                .insert_header(("cookie", stripped.clone()))
                .to_http_request();
            prop_assert_eq!(access_cookie(&forwarded), None, "{:?}", text);
            prop_assert_eq!(refresh_cookie(&forwarded), None, "{:?}", text);
            for pair in stripped.split(|&b| b == b';') {
                let pair = pair.trim_ascii();
                prop_assert!(
                    value.as_bytes().windows(pair.len()).any(|w| w == pair),
                    "{:?}",
                    text
                );
            }
            Ok(())
        });
    }

    #[test]
    fn a_cookie_is_read_by_its_exact_name() {
        let req = TestRequest::default()
            .insert_header((
                "cookie",
                "x=1; confab%5Faccess=a; confab_access=; confab_access=tok",
            ))
            .to_http_request();
        assert_eq!(access_cookie(&req).as_deref(), Some("tok"));
        assert_eq!(refresh_cookie(&req), None);
    }

    #[test]
    fn the_own_origin_and_trusted_ones_pass_and_others_do_not() {
        let browser = browser(&["https://console.example"]);
        let check = |headers: &[(&str, &str)]| {
            let mut req = TestRequest::post().insert_header(("host", "gw.example:9050"));
            for header in headers {
                req = req.append_header(*header);
            }
            browser
                .check_origin(&req.to_http_request())
                .map_err(|e| e.code())
        };
        assert_eq!(check(&[("origin", "http://gw.example:9050")]), Ok(()));
        assert_eq!(check(&[("origin", "https://console.example")]), Ok(()));
        assert_eq!(check(&[("origin", "https://console.example:443")]), Ok(()));
        assert_eq!(check(&[("x-confab-client", "console")]), Ok(()));
        for refused in [
            vec![],
            vec![("origin", "https://gw.example:9050")],
            vec![("origin", "http://gw.example")],
            vec![("origin", "http://evil.example")],
            vec![("origin", "null")],
            vec![("origin", "garbage")],
            vec![("origin", "null"), ("x-confab-client", "console")],
            vec![
                ("origin", "http://gw.example:9050"),
                ("origin", "http://evil.example"),
            ],
        ] {
            assert_eq!(check(&refused), Err("csrf_rejected"), "{refused:?}");
        }
        let proxied = TestRequest::post()
            .insert_header(("host", "10.0.0.5:9050"))
            .insert_header(("x-forwarded-proto", "https"))
            .insert_header(("x-forwarded-host", "confab.example"))
            .insert_header(("origin", "https://confab.example"))
            .to_http_request();
        assert_eq!(browser.check_origin(&proxied).map_err(|e| e.code()), Ok(()));
    }

    #[test]
    fn a_wildcard_or_a_url_is_not_a_trusted_origin() {
        for bad in [
            "*",
            "https://a.example/",
            "https://a.example/path",
            "null",
            "",
        ] {
            let settings = BrowserSettings {
                trusted_origins: vec![bad.to_owned()],
                secure_cookies: false,
            };
            assert!(Browser::new(&settings, 1, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn cookies_carry_their_attributes() {
        let browser = browser(&[]);
        let plain = TestRequest::default().to_http_request();
        let [access, refresh] = browser.session_cookies(&plain, "a.b.c".into(), "r".into());
        assert_eq!(
            access.to_string(),
            "confab_access=a.b.c; HttpOnly; SameSite=Strict; Path=/; Max-Age=1800"
        );
        assert_eq!(
            refresh.to_string(),
            "confab_refresh=r; HttpOnly; SameSite=Strict; Path=/api/v1/auth; Max-Age=2592000"
        );
        let https = TestRequest::default()
            .insert_header(("x-forwarded-proto", "https"))
            .to_http_request();
        let [access, _] = browser.removal_cookies(&https);
        let access = access.to_string();
        assert!(
            access.starts_with(
                "confab_access=; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=0"
            ),
            "{access}"
        );
    }
}
