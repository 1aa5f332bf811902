//! Users whose access tokens stop working before they expire (issue 21):
//! a disabled account, or one whose password or role changed.
//!
//! An access token is a signed statement that lives 30 minutes; nothing in
//! it can be taken back. So the gateway keeps, per user, the moment before
//! which that user's tokens are refused (`valid_after`, compared with
//! the token's `iat`; [`DISABLED`] for a disabled account), and every
//! service that verifies tokens holds a copy of that list and reads it
//! again every [`POLL_INTERVAL`] from the gateway's
//! `GET /internal/revocations` (service token only). A token the gateway
//! would now refuse is refused everywhere within that interval plus one
//! request, even from the verified-token cache. When the gateway cannot be
//! reached the last list stays in force.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use confab_protocol::auth::{AccessClaims, RevocationList, SERVICE_TOKEN_HEADER};

/// 2 s: with a request's time on top, a disabled user's token is refused by
/// every service within 5 s of the admin's click.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// `valid_after` of a disabled account: no token, whenever issued.
pub const DISABLED: i64 = i64::MAX;

/// The users whose tokens are refused, and since when.
#[derive(Default)]
pub struct Revocations {
    valid_after: RwLock<Arc<HashMap<String, i64>>>,
}

impl Revocations {
    /// Whether `claims` belong to a token issued at or before its user's
    /// cut-off.
    pub fn refuses(&self, claims: &AccessClaims) -> bool {
        self.current()
            .get(&claims.sub)
            .is_some_and(|&valid_after| claims.iat <= valid_after)
    }

    /// Replaces the whole list (what the gateway answered).
    pub fn replace(&self, list: RevocationList) {
        let map = list
            .users
            .into_iter()
            .map(|user| (user.user_id, user.valid_after))
            .collect();
        self.store(Arc::new(map));
    }

    /// One user's cut-off, at once (the gateway, on the instance that made
    /// the change; the next poll confirms it); `None` lifts it.
    pub fn set(&self, user_id: &str, valid_after: Option<i64>) {
        let mut map = (*self.current()).clone();
        match valid_after {
            Some(before) => map.insert(user_id.to_owned(), before),
            None => map.remove(user_id),
        };
        self.store(Arc::new(map));
    }

    fn current(&self) -> Arc<HashMap<String, i64>> {
        match self.valid_after.read() {
            Ok(map) => map.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store(&self, map: Arc<HashMap<String, i64>>) {
        match self.valid_after.write() {
            Ok(mut current) => *current = map,
            Err(poisoned) => *poisoned.into_inner() = map,
        }
    }
}

/// Reads the list from `url` now and then every [`POLL_INTERVAL`], for as
/// long as `revocations` is alive.
pub fn watch(revocations: &Arc<Revocations>, url: String, service_token: String) {
    let weak = Arc::downgrade(revocations);
    tokio::spawn(poll(weak, url, service_token));
}

async fn poll(revocations: Weak<Revocations>, url: String, service_token: String) {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .timeout(POLL_INTERVAL)
        .build()
        .unwrap_or_default();
    let mut ticks = tokio::time::interval(POLL_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Logged once per outage, not every two seconds.
    let mut failing = false;
    loop {
        ticks.tick().await;
        let Some(revocations) = revocations.upgrade() else {
            return;
        };
        let answer = async {
            http.get(&url)
                .header(SERVICE_TOKEN_HEADER, &service_token)
                .send()
                .await?
                .error_for_status()?
                .json::<RevocationList>()
                .await
        }
        .await;
        match answer {
            Ok(list) => {
                revocations.replace(list);
                if failing {
                    tracing::info!(%url, "reading the token revocations works again");
                    failing = false;
                }
            }
            Err(error) if !failing => {
                tracing::warn!(%url, %error, "reading the token revocations failed; the last list stays in force");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use confab_protocol::auth::{RevokedUser, Role};

    use super::*;

    fn token(sub: &str, iat: i64) -> AccessClaims {
        AccessClaims {
            sub: sub.into(),
            name: "ada".into(),
            role: Role::User,
            iat,
            exp: iat.saturating_add(1800),
            iss: "confab-gateway".into(),
            aud: "confab".into(),
        }
    }

    #[test]
    fn tokens_issued_up_to_the_cut_off_are_refused_and_later_ones_are_not() {
        let revocations = Revocations::default();
        revocations.replace(RevocationList {
            users: vec![RevokedUser {
                user_id: "usr-1".into(),
                valid_after: 100,
            }],
        });
        assert!(revocations.refuses(&token("usr-1", 99)));
        assert!(revocations.refuses(&token("usr-1", 100)));
        assert!(!revocations.refuses(&token("usr-1", 101)));
        assert!(!revocations.refuses(&token("usr-2", 1)));
    }

    #[test]
    fn a_disabled_user_has_no_valid_token_and_lifting_it_restores_them() {
        let revocations = Revocations::default();
        revocations.set("usr-1", Some(DISABLED));
        assert!(revocations.refuses(&token("usr-1", i64::MAX)));
        revocations.set("usr-1", None);
        assert!(!revocations.refuses(&token("usr-1", 5)));
    }
}
