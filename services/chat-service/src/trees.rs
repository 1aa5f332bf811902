//! A conversation's tree as it changes: the patches its agent sends during a
//! turn, the edits a client makes over its socket (`tree_edit`), and the news
//! of each client edit for the conversation's other sockets. The JSON Patch
//! and the tree's limits themselves are [`crate::tree_patch`], which knows
//! nothing of storage.

use confab_kit::db::Db;
use confab_protocol::chat::{ChatEvent, EventError};
use confab_protocol::ids::{ConversationId, UserId};
use serde_json::Value;

use crate::error::ChatError;
use crate::store::trees;
use crate::tree_patch::{PatchRefused, TreeLimits, TreePatch};

/// Attempts when the tree changes between reading and writing it (another
/// edit landed); the agent's patch is checked again against each newer tree.
const ATTEMPTS: usize = 3;

/// An agent's `tree_patch` applied to its conversation's tree, as the event
/// its turn emits: `tree_update` with the tree's new version, or an `error`
/// when it does not apply (the tree unchanged).
pub async fn agent_patch(
    db: &Db,
    user_id: &UserId,
    conversation_id: &ConversationId,
    patch: Value,
    limits: TreeLimits,
) -> ChatEvent {
    match apply_agent_patch(db, user_id, conversation_id, &patch, limits).await {
        Ok(version) => ChatEvent::TreeUpdate { patch, version },
        Err(refused) => {
            tracing::warn!(conversation_id = %conversation_id, code = refused.code, message = %refused.message, "tree patch refused");
            ChatEvent::Error {
                error: EventError {
                    code: refused.code.into(),
                    message: refused.message,
                },
            }
        }
    }
}

/// Why an agent's patch was not applied: the `error` event's code and
/// message. The tree is then unchanged.
#[derive(Debug, PartialEq, Eq)]
pub struct AgentPatchRefused {
    pub code: &'static str,
    pub message: String,
}

impl AgentPatchRefused {
    fn new(message: impl Into<String>) -> Self {
        Self {
            code: "invalid_tree_patch",
            message: message.into(),
        }
    }
}

impl From<PatchRefused> for AgentPatchRefused {
    fn from(refused: PatchRefused) -> Self {
        let code = match refused {
            // The code an agent's unusable patch has always had.
            PatchRefused::Invalid(_) => "invalid_tree_patch",
            _ => refused.code(),
        };
        Self {
            code,
            message: format!("the agent's tree_patch was refused: {refused}"),
        }
    }
}

/// Applies an agent's `patch` to the conversation's tree and stores the
/// result as the next version, whatever version the tree is at.
async fn apply_agent_patch(
    db: &Db,
    user_id: &UserId,
    conversation_id: &ConversationId,
    patch: &Value,
    limits: TreeLimits,
) -> Result<i64, AgentPatchRefused> {
    let patch = TreePatch::parse(patch, limits)?;
    for _ in 0..ATTEMPTS {
        let (mut tree, version) = trees::get(db, user_id, conversation_id)
            .await
            .map_err(|err| AgentPatchRefused::new(format!("reading the tree failed: {err}")))?
            .ok_or_else(|| AgentPatchRefused::new("the conversation is gone"))?;
        patch.apply(&mut tree, limits)?;
        match trees::replace(db, user_id, conversation_id, version, &tree).await {
            Ok(Some(version)) => return Ok(version),
            Ok(None) => continue,
            Err(err) => {
                return Err(AgentPatchRefused::new(format!(
                    "saving the tree failed: {err}"
                )));
            }
        }
    }
    Err(AgentPatchRefused::new(
        "the tree kept changing while the patch was applied",
    ))
}

/// Why a client's edit was refused.
pub enum EditRefused {
    /// The tree moved on from `base_version`; the client reloads it.
    Stale {
        current_version: i64,
    },
    Invalid(ChatError),
}

impl From<PatchRefused> for EditRefused {
    fn from(refused: PatchRefused) -> Self {
        EditRefused::Invalid(refused.into())
    }
}

/// Applies a client's `patch`, made against `base_version`, only while the
/// tree is still at that version; the new version.
pub async fn edit(
    db: &Db,
    user_id: &UserId,
    conversation_id: &ConversationId,
    patch: &Value,
    base_version: i64,
    limits: TreeLimits,
) -> Result<i64, EditRefused> {
    let patch = TreePatch::parse(patch, limits)?;
    let (mut tree, version) = trees::get(db, user_id, conversation_id)
        .await
        .map_err(|err| EditRefused::Invalid(err.into()))?
        .ok_or(EditRefused::Invalid(ChatError::ConversationNotFound))?;
    if version != base_version {
        return Err(EditRefused::Stale {
            current_version: version,
        });
    }
    patch.apply(&mut tree, limits)?;
    match trees::replace(db, user_id, conversation_id, base_version, &tree).await {
        Ok(Some(version)) => Ok(version),
        Ok(None) => {
            // Another edit landed between the read and the write.
            let current_version = trees::get(db, user_id, conversation_id)
                .await
                .ok()
                .flatten()
                .map_or(base_version + 1, |(_, v)| v);
            Err(EditRefused::Stale { current_version })
        }
        Err(err) => Err(EditRefused::Invalid(err.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{conversations, trees};
    use confab_kit::testing::TestDatabase;
    use serde_json::json;

    fn user(id: &str) -> UserId {
        id.into()
    }

    const LIMITS: TreeLimits = TreeLimits {
        max_bytes: 256 * 1024,
        max_ops: 100,
    };

    #[tokio::test]
    async fn a_patch_that_does_not_apply_leaves_the_tree_as_it_was() {
        let database = TestDatabase::new("chat").await.unwrap();
        let db = Db::connect(&database.settings, &crate::store::MIGRATIONS)
            .await
            .unwrap();
        let title = crate::domain::ConversationTitle::untitled();
        let row = conversations::new_row(&user("usr-ada"), title, "tree".into());
        conversations::create(&db, &row).await.unwrap();

        let root = json!([{"op": "add", "path": "", "value": {"id": "root", "label": "root", "children": []}}]);
        assert_eq!(
            apply_agent_patch(&db, &user("usr-ada"), &row.id, &root, LIMITS).await,
            Ok(1)
        );

        let mut doubling = vec![json!({"op": "add", "path": "/a", "value": ["x".repeat(8000)]})];
        doubling.extend((0..25).map(|_| json!({"op": "copy", "from": "/a", "path": "/a/-"})));
        for (bad, code) in [
            (
                json!([{"op": "remove", "path": "/children/5"}]),
                "invalid_tree_patch",
            ),
            (json!([{"op": "explode", "path": ""}]), "invalid_tree_patch"),
            (json!({"not": "a patch"}), "invalid_tree_patch"),
            (Value::Array(doubling), "tree_too_large"),
            (
                json!(vec![json!({"op": "test", "path": "", "value": 1}); 101]),
                "patch_too_large",
            ),
        ] {
            let refused = apply_agent_patch(&db, &user("usr-ada"), &row.id, &bad, LIMITS).await;
            assert_eq!(refused.map_err(|r| r.code), Err(code), "{bad:.80}");
        }
        let (tree, version) = trees::get(&db, &user("usr-ada"), &row.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(version, 1, "refused patches change nothing");
        assert_eq!(tree, json!({"id": "root", "label": "root", "children": []}));

        assert!(
            apply_agent_patch(&db, &user("usr-bob"), &row.id, &root, LIMITS)
                .await
                .is_err(),
            "not bob's"
        );
        // A stale base version is refused by the store.
        assert_eq!(
            trees::replace(&db, &user("usr-ada"), &row.id, 0, &json!({}))
                .await
                .unwrap(),
            None
        );
    }
}
