//! Forged and broken access tokens are refused by every service that takes
//! one: the gateway (its own endpoints, proxied routes, WebSocket
//! upgrades), chat-service and llm-proxy-service called directly (REST and
//! WebSocket), and dashboard-proxy (close 4401).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use confab_protocol::auth::{AccessClaims, Role};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::common::ws::{Frame, connect, try_connect};
use crate::common::{Stack, User, assert_error, fetch_json, send};

/// The gateway's signing key and its kid, read from its database.
async fn signing_key(stack: &Stack) -> (String, EncodingKey, String) {
    // Any key retired in the last year (PostgreSQL's timestamps stop short
    // of chrono's MIN).
    let since = chrono::Utc::now().naive_utc() - chrono::Duration::days(365);
    let keys = gateway::store::keys::verifying(&stack.gateway_db, since)
        .await
        .unwrap();
    let active = keys.into_iter().find(|k| k.active).unwrap();
    let der = STANDARD.decode(&active.private_key).unwrap();
    (
        active.kid,
        EncodingKey::from_ed_der(&der),
        active.public_key,
    )
}

fn claims(user: &User, exp_in: i64) -> AccessClaims {
    let now = chrono::Utc::now().timestamp();
    AccessClaims {
        sub: user.id.clone(),
        name: "ada".into(),
        role: Role::Admin,
        iat: now,
        exp: now + exp_in,
        iss: "confab-gateway".into(),
        aud: "confab".into(),
    }
}

fn sign(kid: &str, key: &EncodingKey, claims: &AccessClaims) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Every way a token can be wrong, each named.
async fn bad_tokens(stack: &Stack, user: &User) -> Vec<(&'static str, String)> {
    let (kid, key, public_x) = signing_key(stack).await;
    let good = claims(user, 600);
    let payload = serde_json::to_value(&good).unwrap();

    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(&payload)
    );
    // HS256 keyed with the public key, the classic algorithm confusion.
    let public = URL_SAFE_NO_PAD.decode(&public_x).unwrap();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    let hs_raw =
        jsonwebtoken::encode(&hs_header, &good, &EncodingKey::from_secret(&public)).unwrap();
    let hs_text = jsonwebtoken::encode(
        &hs_header,
        &good,
        &EncodingKey::from_secret(public_x.as_bytes()),
    )
    .unwrap();
    let expired = sign(&kid, &key, &claims(user, -3600));
    let mut wrong_aud = good.clone();
    wrong_aud.aud = "someone-else".into();
    let mut wrong_iss = good.clone();
    wrong_iss.iss = "evil-issuer".into();
    // The user's real token with its payload swapped for an admin one.
    let real = user.token.split('.').collect::<Vec<_>>();
    let tampered = format!("{}.{}.{}", real[0], b64(&payload), real[2]);
    // A well-formed token from a key the gateway never had.
    let stranger = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let stranger_der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&stranger).unwrap();
    let foreign = sign(
        "key-foreign",
        &EncodingKey::from_ed_der(stranger_der.as_bytes()),
        &good,
    );
    let foreign_same_kid = sign(
        &kid,
        &EncodingKey::from_ed_der(stranger_der.as_bytes()),
        &good,
    );
    vec![
        ("alg none", none),
        ("HS256 keyed with the raw public key", hs_raw),
        ("HS256 keyed with the JWK x", hs_text),
        ("expired", expired),
        ("wrong aud", sign(&kid, &key, &wrong_aud)),
        ("wrong iss", sign(&kid, &key, &wrong_iss)),
        ("tampered payload", tampered),
        ("unknown kid", foreign),
        ("known kid, foreign key", foreign_same_kid),
        ("garbage", "not.a.token".into()),
    ]
}

#[tokio::test]
async fn forged_or_broken_tokens_get_401_from_every_service() {
    let stack = Stack::start().await;
    let user = stack.user("ada").await;
    let urls = [
        format!("{}/api/v1/auth/me", stack.gateway),
        format!("{}/api/v1/conversations", stack.gateway),
        format!("{}/api/v1/llm-calls", stack.gateway),
        format!("{}/chat/conversations", stack.chat),
        format!("{}/llm-calls", stack.llm),
    ];
    // The genuine token works everywhere, so a 401 below is the token's doing.
    for url in &urls {
        let ok = send(stack.http.get(url).bearer_auth(&user.token)).await;
        assert_eq!(ok.status(), 200, "{url}");
    }
    for (what, token) in bad_tokens(&stack, &user).await {
        for url in &urls {
            let response = send(stack.http.get(url).bearer_auth(&token)).await;
            assert_error(response, 401, "unauthorized", &format!("{what}: {url}")).await;
        }
    }
}

#[tokio::test]
async fn forged_or_broken_tokens_cannot_open_a_websocket_anywhere() {
    let stack = Stack::start().await;
    let user = stack.user("ada").await;
    for (what, token) in bad_tokens(&stack, &user).await {
        for base in [&stack.gateway, &stack.chat, &stack.llm] {
            for path in ["/ws/chat", "/ws/trace/math"] {
                if base == &stack.chat && path != "/ws/chat"
                    || base == &stack.llm && path != "/ws/trace/math"
                {
                    continue;
                }
                let url = format!("{base}{path}?token={token}");
                match try_connect(&url, None).await {
                    Err(WsError::Http(response)) => {
                        assert_eq!(response.status(), 401, "{what}: {url}")
                    }
                    other => panic!("{what}: {url}: expected 401, got {:?}", other.map(|_| ())),
                }
            }
        }
        let mut ws = connect(&format!("{}/ws/chat?token={token}", stack.dashboard), None).await;
        match ws.frame().await {
            Frame::Closed(Some((code, _))) => assert_eq!(code, 4401, "{what}"),
            other => panic!("{what}: expected close 4401, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_cannot_pose_as_the_gateway_to_the_services() {
    let stack = Stack::start().await;
    let user = stack.user("ada").await;
    let victim = stack.user("bob").await;
    let conversation = stack.conversation(&victim).await;
    let url = format!("{}/chat/conversations/{conversation}", stack.chat);
    // Identity headers without the service token, or with a guessed one.
    for token in [None, Some("guessed-service-token")] {
        let mut request = stack
            .http
            .get(&url)
            .header("x-user-id", victim.id.as_str())
            .bearer_auth(&user.token);
        if let Some(token) = token {
            request = request.header("x-service-token", token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{token:?}");
    }
    // `_auth` in a body without the service token.
    let forged = stack
        .http
        .post(format!("{}/chat/conversations", stack.chat))
        .bearer_auth(&user.token)
        .json(&json!({"title": "x", "_auth": {"user_id": victim.id, "role": "admin"}}));
    let forged = send(forged).await;
    assert_eq!(forged.status(), 401);
    // The same through the gateway: the forgery is replaced, the user's own
    // identity is what chat-service sees.
    let through = stack
        .post("/api/v1/conversations")
        .bearer_auth(&user.token)
        .header("x-user-id", victim.id.as_str())
        .header("x-service-token", "confab-dev-service-token")
        .json(&json!({"title": "mine", "_auth": {"user_id": victim.id, "role": "admin"}}));
    let through = fetch_json(through).await;
    let mine = through["id"].as_str().unwrap();
    let theirs = stack.get(&format!("/api/v1/conversations/{mine}"));
    let theirs = send(theirs.bearer_auth(&victim.token)).await;
    assert_eq!(theirs.status(), 404, "the conversation is the forger's own");
}
