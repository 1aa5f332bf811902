//! The request path, decoded and checked once, before routing (issue 16).
//!
//! A proxy that matches one form of a path and forwards another can be
//! walked out of its routing table: `/ws/trace/%2e%2e/%2e%2e/metrics`
//! matched the `/ws/trace` route as written, and the URL library that built
//! the upstream URL then resolved the encoded dots, so the request reached
//! the upstream's `/metrics`. So the gateway decodes the path once, refuses
//! what could change meaning on a later decoding or normalisation, routes the
//! decoded path, and writes the remainder out itself, segment by segment,
//! percent-encoded ([`push_segments`]); no URL library re-parses what the
//! client sent.
//!
//! Refused with 400 `bad_path`, in any segment, however many times it has
//! been percent-encoded (`%2e`, `%2E`, `%252e`, …): a `.` or `..` segment, a
//! `/` inside a segment (`%2f`), a `\` (plain or `%5c`: some servers read it
//! as `/`), a NUL (`%00`); also a segment that still decodes further after
//! [`MAX_DECODINGS`], and one that is not UTF-8 once decoded.

use std::borrow::Cow;
use std::fmt::Write as _;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode, percent_decode_str};

use crate::error::GatewayError;

/// Percent-encoded in a segment written for the upstream: everything a path
/// segment may not hold as it is (RFC 3986 `pchar`), `%` itself (a decoded
/// `%` is a character, not an escape), and the characters some servers treat
/// specially (`\`, `^`, `|`, brackets). Non-ASCII is always encoded.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// How many times a segment is decoded to look for what an upstream that
/// decodes again would see. Four: `%2e` encoded three more times
/// (`%2525252e`); no real path nests escapes that deep, and the bound keeps
/// the check linear in the path's length.
pub const MAX_DECODINGS: usize = 4;

/// A request path, percent-decoded once, every segment checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath<'a>(Cow<'a, str>);

impl<'a> RequestPath<'a> {
    /// `raw` as the request line carries it (percent-encoded).
    pub fn parse(raw: &'a str) -> Result<Self, GatewayError> {
        let segments = raw
            .strip_prefix('/')
            .ok_or_else(|| bad_path("the path must start with '/'"))?;
        if !raw.contains('%') {
            // Nothing encoded: the path is its own decoded form.
            for segment in segments.split('/') {
                check(segment.as_bytes())?;
            }
            return Ok(Self(Cow::Borrowed(raw)));
        }
        let mut decoded = String::with_capacity(raw.len());
        for segment in segments.split('/') {
            let once = percent_decode_str(segment)
                .decode_utf8()
                .map_err(|_| bad_path("the path is not UTF-8 once decoded"))?;
            check(once.as_bytes())?;
            decoded.push('/');
            decoded.push_str(&once);
        }
        Ok(Self(Cow::Owned(decoded)))
    }

    /// The decoded path: `/`-separated segments, none of which holds a `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Appends `rest` (empty, or `/`-prefixed segments of a [`RequestPath`]) to
/// `out`, each segment percent-encoded.
pub fn push_segments(out: &mut String, rest: &str) {
    for segment in rest.split('/').skip(1) {
        out.push('/');
        // Writing into a String cannot fail.
        let _ = write!(
            out,
            "{}",
            percent_encoding::utf8_percent_encode(segment, SEGMENT)
        );
    }
}

/// Checks one segment, decoded once, and what it decodes to after that.
fn check(segment: &[u8]) -> Result<(), GatewayError> {
    let mut segment = Cow::Borrowed(segment);
    for _ in 0..MAX_DECODINGS {
        if matches!(&*segment, b"." | b"..") {
            return Err(bad_path("'.' and '..' segments are not allowed"));
        }
        if segment.contains(&b'/') {
            return Err(bad_path("an encoded '/' is not allowed in a segment"));
        }
        if segment.contains(&b'\\') {
            return Err(bad_path("'\\' is not allowed in a path"));
        }
        if segment.contains(&0) {
            return Err(bad_path("NUL is not allowed in a path"));
        }
        if !segment.contains(&b'%') {
            return Ok(());
        }
        let next: Cow<[u8]> = percent_decode(&segment).into();
        if next.len() == segment.len() {
            // No escape left, only `%` characters.
            return Ok(());
        }
        segment = Cow::Owned(next.into_owned());
    }
    Err(bad_path("the path is percent-encoded too many times"))
}

fn bad_path(why: &'static str) -> GatewayError {
    GatewayError::BadPath(why)
}

#[cfg(test)]
mod tests {
    use confab_kit::Refusal;

    use super::*;

    fn forwarded(raw: &str) -> Result<String, &'static str> {
        let path = RequestPath::parse(raw).map_err(|e| e.code())?;
        let mut out = String::new();
        push_segments(&mut out, path.as_str());
        Ok(out)
    }

    #[test]
    fn ordinary_paths_come_back_as_they_were_meant() {
        for (raw, out) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("/a//b", "/a//b"),
            ("/a%20b/%41", "/a%20b/A"),
            ("/100%25", "/100%25"),
            ("/50%/x%zz", "/50%25/x%25zz"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/.../a..b/.x", "/.../a..b/.x"),
            ("/a%2eb", "/a.b"),
            ("/a%3fb%23c", "/a%3Fb%23c"),
            ("/conv-01a2:x@y;z=1,2+3", "/conv-01a2:x@y;z=1,2+3"),
        ] {
            assert_eq!(forwarded(raw).as_deref(), Ok(out), "{raw}");
        }
    }

    #[test]
    fn every_escape_form_is_refused() {
        for raw in [
            "/..",
            "/.",
            "/a/../b",
            "/a/./b",
            "/a/.",
            "/%2e%2e",
            "/%2E%2E/x",
            "/%2e./x",
            "/.%2E/x",
            "/%2e/x",
            "/%252e%252e/x",
            "/%25252E%25252e/x",
            "/%2525252e/x",
            "/a%2fb",
            "/a%2Fb",
            "/a%252fb",
            "/a\\b",
            "/a%5cb",
            "/a%5Cb",
            "/a%255cb",
            "/a%00b",
            "/a%2500b",
            "/%ff",
            "relative",
            "*",
            "",
        ] {
            assert_eq!(forwarded(raw), Err("bad_path"), "{raw}");
        }
    }

    #[test]
    fn encoding_nested_past_the_limit_is_refused() {
        // `%` encoded again and again: `%25`, `%2525`, …
        let nested = |times: usize| format!("/x{}41", "%".to_owned() + &"25".repeat(times));
        assert!(forwarded(&nested(MAX_DECODINGS - 1)).is_ok());
        assert_eq!(forwarded(&nested(MAX_DECODINGS)), Err("bad_path"));
    }

    #[test]
    fn an_unencoded_path_is_not_copied() {
        let path = RequestPath::parse("/api/v1/conversations/conv-1").unwrap();
        assert!(matches!(path.0, Cow::Borrowed(_)));
    }

    #[test]
    fn fuzz_paths_are_refused_or_forwarded_without_dot_segments() {
        use confab_kit::fuzz;
        use proptest::prelude::*;
        let samples = [
            "/api/v1/conversations/conv-1/messages",
            "/ws/trace/math",
            "/ws/trace/%2e%2e/%2e%2e/metrics",
            "/ws/chat/%252e%252e/x",
            "/api/v1/a%2fb/c%5cd/%00",
            "/caf%C3%A9/100%25",
        ]
        .map(str::to_owned)
        .to_vec();
        let paths = prop_oneof![
            4 => fuzz::mutated(samples),
            1 => any::<String>().prop_map(|s| format!("/{s}")),
        ];
        fuzz::fuzz(paths, |raw| {
            let Ok(out) = forwarded(&raw) else {
                prop_assert_eq!(RequestPath::parse(&raw).unwrap_err().status().as_u16(), 400);
                return Ok(());
            };
            // However often an upstream decodes what it is sent, it finds
            // no dot segment, no NUL and no backslash.
            let mut seen = out.clone().into_bytes();
            for _ in 0..=MAX_DECODINGS + 1 {
                for segment in seen.split(|&b| b == b'/') {
                    prop_assert!(!matches!(segment, b"." | b".."), "{raw:?} → {out:?}");
                    prop_assert!(!segment.contains(&0) && !segment.contains(&b'\\'));
                }
                seen = percent_decode(&seen).collect();
            }
            // Forwarding is stable, and a URL library leaves it alone.
            prop_assert_eq!(forwarded(&out).ok(), Some(out.clone()));
            let url = reqwest::Url::parse(&format!("http://upstream{out}"));
            prop_assert_eq!(url.map(|u| u.path().to_owned()).ok(), Some(out));
            Ok(())
        });
    }

    #[test]
    fn what_is_written_out_parses_back_to_the_same_path() {
        // A URL library given the forwarded path (the WebSocket handshake's
        // reqwest) finds nothing to normalise in it.
        for raw in ["/a%20b/100%25/%41", "/.../x%2ey/caf%C3%A9", "/a%3F%23/"] {
            let out = forwarded(raw).unwrap();
            let url = reqwest::Url::parse(&format!("http://upstream{out}")).unwrap();
            assert_eq!(url.path(), out, "{raw}");
        }
    }
}
