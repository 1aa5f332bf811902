//! Paths that try to walk out of the routing table (issue 16, item 2): dot
//! segments plain, percent-encoded in any case or encoded twice, an encoded
//! `/` or `\`, a plain `\`, a NUL. Each is sent as a plain request and as a
//! WebSocket upgrade, with a valid token, over a raw socket (a URL-parsing
//! client would resolve the dots before sending), and each must get 400
//! `bad_path` without reaching any upstream.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::echo::stack_with_echo;

/// How a request is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Http,
    WebSocket,
}

/// What came back: the status and the body.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn error_code(&self) -> Option<String> {
        let body: Value = serde_json::from_str(&self.body).ok()?;
        body["error"]["code"].as_str().map(str::to_owned)
    }
}

/// `GET target` over a raw socket to `base`: the request target goes out
/// byte for byte as given. A 101 ends the exchange (no body is read).
async fn raw_get(base: &str, target: &str, token: &str, kind: Kind) -> Reply {
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut request =
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n");
    match kind {
        Kind::Http => request.push_str("Connection: close\r\n"),
        Kind::WebSocket => request.push_str(
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        ),
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), read_reply(&mut stream))
        .await
        .unwrap_or_else(|_| panic!("no reply to {target} ({kind:?})"))
}

/// One HTTP/1.1 response: its head, then a body framed by `Content-Length`,
/// chunked, or by the end of the connection.
async fn read_reply(stream: &mut tokio::net::TcpStream) -> Reply {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before the head: {bytes:?}");
        bytes.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_lowercase();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_owned())
    };
    let mut body = bytes[head_end..].to_vec();
    if status == 101 {
        return Reply {
            status,
            body: String::new(),
        };
    }
    if let Some(length) = header("content-length") {
        let length: usize = length.parse().unwrap();
        while body.len() < length {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed inside the body");
            body.extend_from_slice(&buf[..n]);
        }
        body.truncate(length);
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        while !body.ends_with(b"0\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed inside a chunked body");
            body.extend_from_slice(&buf[..n]);
        }
        body = dechunk(&body);
    } else {
        stream.read_to_end(&mut body).await.unwrap();
    }
    Reply {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut chunked: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = chunked.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&chunked[..line_end]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&chunked[start..start + size]);
        chunked = &chunked[start + size + 2..];
    }
}

/// Every form of an escape from the route's prefix, after `/echo/`.
const ESCAPES: &[&str] = &[
    // Dot segments, plain.
    "a/../../metrics",
    "..",
    "./x",
    "a/.",
    "a/./b",
    // Percent-encoded, either case, and mixed with plain dots.
    "%2e%2e/metrics",
    "%2E%2E/metrics",
    "%2e%2E/metrics",
    "%2e./metrics",
    ".%2E/metrics",
    "%2e/metrics",
    "a/%2E",
    // Encoded twice (and three times).
    "%252e%252e/metrics",
    "%252E%252E/metrics",
    "%25252e%25252e/metrics",
    "%252e./metrics",
    // An encoded `/`, once or twice.
    "a%2fb",
    "a%2Fb",
    "..%2f..%2fmetrics",
    "a%252fb",
    // An encoded `\`, once or twice, and a plain one.
    "a%5cb",
    "a%5Cb",
    "..%5c..%5cmetrics",
    "a%255cb",
    "a\\b",
    "..\\..\\metrics",
    // NUL, once or twice encoded.
    "a%00b",
    "a%2500b",
];

#[tokio::test]
async fn a_websocket_upgrade_cannot_walk_out_of_its_route() {
    let (stack, _echo) = stack_with_echo(|_| {}).await;
    let user = stack.user("ada").await;
    // The attacks of the issue: llm-proxy's /metrics and model list, and
    // chat-service's /metrics, from the two WebSocket routes.
    for target in [
        "/ws/trace/%2e%2e/%2e%2e/metrics",
        "/ws/trace/%2e%2e/%2e%2e/v1/models",
        "/ws/chat/%2e%2e/metrics",
        "/ws/chat/%2E%2E/%2E%2E/metrics",
        "/ws/trace/math/%2e%2e/%2e%2e/%2e%2e/metrics",
    ] {
        for kind in [Kind::WebSocket, Kind::Http] {
            let reply = raw_get(&stack.gateway, target, &user.token, kind).await;
            assert_eq!(reply.status, 400, "{target} ({kind:?}): {}", reply.body);
            assert_eq!(
                reply.error_code().as_deref(),
                Some("bad_path"),
                "{target}: {}",
                reply.body
            );
            // Nothing of an upstream's metrics or model list came back.
            for leaked in ["http_request_duration_seconds", "# TYPE", "\"object\""] {
                assert!(!reply.body.contains(leaked), "{target}: {}", reply.body);
            }
        }
    }
    // The routes themselves still work.
    let models = stack
        .http
        .get(format!("{}/api/v1/models", stack.gateway))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    let mut ws = crate::common::ws::connect(
        &format!("{}/ws/trace/math", stack.gateway),
        Some(&user.token),
    )
    .await;
    ws.close(1000, "done").await;
}

#[tokio::test]
async fn every_escape_form_gets_400_and_never_reaches_an_upstream() {
    let (stack, echo) = stack_with_echo(|_| {}).await;
    let user = stack.user("ada").await;
    for prefix in ["/echo", "/raw"] {
        for escape in ESCAPES {
            let target = format!("{prefix}/{escape}");
            for kind in [Kind::Http, Kind::WebSocket] {
                let reply = raw_get(&stack.gateway, &target, &user.token, kind).await;
                assert_eq!(reply.status, 400, "{target} ({kind:?}): {}", reply.body);
                assert_eq!(
                    reply.error_code().as_deref(),
                    Some("bad_path"),
                    "{target} ({kind:?}): {}",
                    reply.body
                );
            }
        }
    }
    let reached = echo.received.lock().unwrap().clone();
    assert!(reached.is_empty(), "reached the upstream: {reached:?}");
}

#[tokio::test]
async fn ordinary_paths_are_forwarded_as_validated_segments() {
    let (stack, echo) = stack_with_echo(|_| {}).await;
    let user = stack.user("ada").await;
    for (sent, forwarded) in [
        ("/raw/a/b", "/raw/a/b"),
        ("/raw/a/b/", "/raw/a/b/"),
        ("/raw", "/raw"),
        // Encoded where it must be, decoded where it need not be.
        ("/raw/a%20b/100%25/%41%62c", "/raw/a%20b/100%25/Abc"),
        ("/raw/caf%C3%A9", "/raw/caf%C3%A9"),
        ("/raw/a%3Fb%23c", "/raw/a%3Fb%23c"),
        // Dots that are not whole segments are ordinary characters.
        ("/raw/.../a..b/.x/x.", "/raw/.../a..b/.x/x."),
        ("/raw/a%2eb", "/raw/a.b"),
        // A percent sign that starts no escape is kept as a character.
        ("/raw/50%/x%zz", "/raw/50%25/x%25zz"),
    ] {
        let reply = raw_get(
            &stack.gateway,
            &format!("{sent}?q=1"),
            &user.token,
            Kind::Http,
        )
        .await;
        assert_eq!(reply.status, 200, "{sent}: {}", reply.body);
        let seen: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(seen["path"], forwarded, "{sent}");
        assert_eq!(seen["query"], "q=1", "{sent}");
    }
    assert_eq!(echo.received.lock().unwrap().len(), 9);
}
