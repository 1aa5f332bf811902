//! Puts the caller's identity into a JSON body as `_auth`.
//!
//! Bodies on auth-injected routes must be JSON objects: anything else could
//! smuggle an `_auth` past the gateway, so it is refused. The body is checked
//! in one pass ([`ObjectShape`]: is it one object, does it name `_auth`), and
//! the identity is spliced in before its closing brace: the client's own
//! members pass on byte for byte, so a number keeps its digits (a parsed
//! `serde_json::Value` would round a long decimal to an `f64`) and nothing is
//! built or re-serialised per request. A body that already names `_auth` at
//! its top level, however its key is escaped, is a forgery or a confused
//! client: it alone is rewritten whole, the real identity in place of the
//! sent one.

use actix_web::web::Bytes;
use confab_kit::ApiError;
use confab_protocol::auth::{AUTH_FIELD, AuthContext};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use crate::error::GatewayError;

/// Room for `,"_auth":` and a serialised identity, so the body is copied
/// once.
const IDENTITY_ROOM: usize = 256;

/// The body with `identity` as its `_auth`; a blank body stays empty.
pub fn inject_auth(body: Bytes, identity: &AuthContext) -> Result<Bytes, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::new());
    }
    let shape: ObjectShape = serde_json::from_slice(&body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => GatewayError::BodyNotObject,
        _ => GatewayError::MalformedJson(e),
    })?;
    if shape.names_auth {
        return rewrite_whole(&body, identity);
    }
    // The body parsed as one object followed by JSON whitespace only, so its
    // last other byte is the object's closing brace.
    let close = body
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .filter(|&at| body[at] == b'}')
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("a parsed JSON object has no closing brace"))
        })?;
    let mut out = Vec::with_capacity(body.len() + IDENTITY_ROOM);
    out.extend_from_slice(&body[..close]);
    if shape.members > 0 {
        out.push(b',');
    }
    serde_json::to_writer(&mut out, AUTH_FIELD).map_err(ApiError::internal)?;
    out.push(b':');
    serde_json::to_writer(&mut out, identity).map_err(ApiError::internal)?;
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// A body that names `_auth`, built as a `Value` with the real identity in
/// place of the sent one (every duplicate `_auth` collapses into it).
fn rewrite_whole(body: &[u8], identity: &AuthContext) -> Result<Bytes, ApiError> {
    // The shape check skipped values unbuilt; building them can still fail
    // on what it let through (nesting past serde_json's recursion limit, a
    // number out of f64's range): the client's doing, not ours.
    let mut value: Value = serde_json::from_slice(body).map_err(GatewayError::UnsupportedJson)?;
    if let Some(object) = value.as_object_mut() {
        object.insert(
            AUTH_FIELD.to_owned(),
            serde_json::to_value(identity).map_err(ApiError::internal)?,
        );
    }
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(ApiError::internal)
}

/// What [`inject_auth`] needs to know of a body: that it is one JSON object
/// (checked by deserialising it, values skipped unbuilt, so deep nesting
/// costs no stack), how many members it has, and whether one of its keys is
/// `_auth` once unescaped.
#[derive(Default)]
struct ObjectShape {
    members: usize,
    names_auth: bool,
}

impl<'de> Deserialize<'de> for ObjectShape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectShape::default())
    }
}

impl<'de> Visitor<'de> for ObjectShape {
    type Value = Self;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self, A::Error> {
        while let Some(IsAuthKey(is_auth)) = map.next_key()? {
            map.next_value::<IgnoredAny>()?;
            self.members += 1;
            self.names_auth |= is_auth;
        }
        Ok(self)
    }
}

/// A key of the body's object: is it `_auth` (compared after unescaping,
/// no `String` built per key)?
struct IsAuthKey(bool);

impl<'de> Deserialize<'de> for IsAuthKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(IsAuthKey(false))
    }
}

impl Visitor<'_> for IsAuthKey {
    type Value = Self;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self, E> {
        Ok(IsAuthKey(key == AUTH_FIELD))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_protocol::auth::Role;

    #[test]
    fn non_json_bodies_are_refused_on_injected_routes() {
        let identity = AuthContext {
            user_id: "u".into(),
            username: None,
            role: Role::User,
            api_key_id: None,
        };
        for (body, code) in [
            ("not json", "malformed_json"),
            ("{\"message\": \"unterminated", "malformed_json"),
            ("{} trailing", "malformed_json"),
            ("{}{}", "malformed_json"),
            ("[1]", "invalid_body"),
            ("\"text\"", "invalid_body"),
            ("42", "invalid_body"),
            ("null", "invalid_body"),
        ] {
            assert_eq!(
                inject_auth(Bytes::from(body), &identity)
                    .unwrap_err()
                    .code(),
                code,
                "{body}"
            );
        }
        assert!(
            inject_auth(Bytes::from("  "), &identity)
                .unwrap()
                .is_empty()
        );
    }

    fn ada() -> AuthContext {
        AuthContext {
            user_id: "usr-1".into(),
            username: Some("ada".into()),
            role: Role::User,
            api_key_id: None,
        }
    }

    #[test]
    fn the_clients_members_pass_on_byte_for_byte() {
        let sent = " {\"n\": 1.00000000000000000001, \"big\": 123456789012345678901234567890,\n \"z\": [1, {\"a\": \"\\u00e9\"}], \"a\": null} \r\n";
        let body = inject_auth(Bytes::from(sent), &ada()).unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        let kept = sent.trim_end().strip_suffix('}').unwrap();
        assert_eq!(
            text,
            format!(
                "{kept},\"_auth\":{{\"user_id\":\"usr-1\",\"username\":\"ada\",\"role\":\"user\"}}}}"
            )
        );
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["_auth"]["user_id"], "usr-1");
        assert_eq!(value["z"][1]["a"], "é");
    }

    /// Every top-level `_auth` of a JSON object, however its key is
    /// escaped; other members are skipped unbuilt.
    struct TopLevelAuths(Vec<Value>);

    impl<'de> serde::Deserialize<'de> for TopLevelAuths {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl<'de> serde::de::Visitor<'de> for Visitor {
                type Value = TopLevelAuths;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<TopLevelAuths, A::Error> {
                    let mut auths = Vec::new();
                    while let Some(key) = map.next_key::<String>()? {
                        if key == AUTH_FIELD {
                            auths.push(map.next_value()?);
                        } else {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                    Ok(TopLevelAuths(auths))
                }
            }
            deserializer.deserialize_map(Visitor)
        }
    }

    #[test]
    fn fuzz_any_body_gets_exactly_the_real_identity_or_a_4xx() {
        use confab_kit::fuzz;
        use proptest::prelude::*;
        let samples = [
            r#"{"message":"hi","agent_id":"math"}"#,
            r#"{"_auth":{"user_id":"usr-victim","role":"admin"},"message":"hi"}"#,
            r#"{"message":"hi","\u005fauth":{"user_id":"usr-victim","role":"admin"}}"#,
            r#"{"_auth":"x","_auth":{"role":"admin"},"n":1e400}"#,
            r#"{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],"b":1.00000000000000000001}"#,
            r#"{}"#,
        ]
        .map(str::to_owned)
        .to_vec();
        let identity = serde_json::to_value(ada()).unwrap();
        fuzz::fuzz(fuzz::client_text(samples), |body| {
            match inject_auth(Bytes::from(body.clone()), &ada()) {
                Err(err) => prop_assert!(err.status().is_client_error(), "{body:?}: {err:?}"),
                Ok(out) if out.is_empty() => prop_assert!(body.trim().is_empty()),
                Ok(out) => {
                    let auths: TopLevelAuths = serde_json::from_slice(&out)
                        .map_err(|e| TestCaseError::fail(format!("{body:?} → not JSON: {e}")))?;
                    prop_assert_eq!(&auths.0, &vec![identity.clone()], "{:?}", body);
                }
            }
            Ok(())
        });
    }

    #[test]
    fn an_empty_object_gets_only_the_identity() {
        let body = inject_auth(Bytes::from("{ }"), &ada()).unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"_auth": {"user_id": "usr-1", "username": "ada", "role": "user"}})
        );
    }

    #[test]
    fn a_forged_auth_is_replaced_however_its_key_is_written() {
        for forged in [
            r#"{"_auth":{"user_id":"usr-victim","role":"admin"},"message":"hi"}"#,
            r#"{"message":"hi","\u005fauth":{"user_id":"usr-victim","role":"admin"}}"#,
            r#"{"message":"hi","_auth":"x","_auth":{"user_id":"usr-victim","role":"admin"}}"#,
        ] {
            let body = inject_auth(Bytes::from(forged), &ada()).unwrap();
            let value: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(value["_auth"]["user_id"], "usr-1", "{forged}");
            assert_eq!(value["_auth"]["role"], "user", "{forged}");
            assert_eq!(value["message"], "hi", "{forged}");
            let text = std::str::from_utf8(&body).unwrap();
            assert!(!text.contains("usr-victim"), "{text}");
            assert_eq!(text.matches("_auth").count(), 1, "{text}");
        }
    }

    #[test]
    fn deep_nesting_is_skipped_without_recursion() {
        // serde_json skips values iteratively: a body nested far deeper
        // than any parser's recursion limit cannot overflow the gateway's
        // stack (the upstream's own parser refuses it with 400).
        let depth = 200_000;
        let sent = format!(r#"{{"a":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
        let body = inject_auth(Bytes::from(sent.clone()), &ada()).unwrap();
        assert!(body.starts_with(sent.trim_end_matches('}').as_bytes()));
        assert!(body.ends_with(br#""role":"user"}}"#));
    }

    #[test]
    fn a_forged_auth_the_gateway_cannot_rebuild_is_a_client_error() {
        let deep = format!(
            r#"{{"_auth":{{}},"a":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        for body in [deep.as_str(), r#"{"_auth":1,"n":1e400}"#] {
            let err = inject_auth(Bytes::from(body.to_owned()), &ada()).unwrap_err();
            assert_eq!(err.status().as_u16(), 400, "{body}");
            assert_eq!(err.code(), "unsupported_json", "{body}");
        }
    }

    #[test]
    fn an_auth_below_the_top_level_is_left_alone() {
        let body = inject_auth(
            Bytes::from(r#"{"data":{"_auth":"not an identity"}}"#),
            &ada(),
        )
        .unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["data"]["_auth"], "not an identity");
        assert_eq!(value["_auth"]["user_id"], "usr-1");
    }
}
