//! Applying an agent's `tree_patch` (RFC 6902) to its conversation's tree,
//! within the tree's limits ([`crate::tree_patch`]).

use confab_kit::db::Db;
use serde_json::Value;

use crate::store::trees;
use crate::tree_patch::{PatchRefused, TreeLimits, TreePatch};

/// Attempts when the tree changes between reading and writing it (another
/// edit landed); the patch is checked again against each newer tree.
const ATTEMPTS: usize = 3;

/// Why an agent's patch was not applied: the `error` event's code and
/// message. The tree is then unchanged.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub code: &'static str,
    pub message: String,
}

impl Refused {
    fn new(message: impl Into<String>) -> Self {
        Self {
            code: "invalid_tree_patch",
            message: message.into(),
        }
    }
}

impl From<PatchRefused> for Refused {
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

/// Applies `patch` to the conversation's tree and stores the result as the
/// next version.
pub async fn apply(
    db: &Db,
    user_id: &str,
    conversation_id: &str,
    patch: &Value,
    limits: TreeLimits,
) -> Result<i64, Refused> {
    let patch = TreePatch::parse(patch, limits)?;
    for _ in 0..ATTEMPTS {
        let (mut tree, version) = trees::get(db, user_id, conversation_id)
            .await
            .map_err(|err| Refused::new(format!("reading the tree failed: {err}")))?
            .ok_or_else(|| Refused::new("the conversation is gone"))?;
        patch.apply(&mut tree, limits)?;
        match trees::replace(db, user_id, conversation_id, version, &tree).await {
            Ok(Some(version)) => return Ok(version),
            Ok(None) => continue,
            Err(err) => return Err(Refused::new(format!("saving the tree failed: {err}"))),
        }
    }
    Err(Refused::new(
        "the tree kept changing while the patch was applied",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{conversations, trees};
    use confab_kit::testing::TestDatabase;
    use serde_json::json;

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
        let row = conversations::new_row("usr-ada", title, "tree".into());
        conversations::create(&db, &row).await.unwrap();

        let root = json!([{"op": "add", "path": "", "value": {"id": "root", "label": "root", "children": []}}]);
        assert_eq!(apply(&db, "usr-ada", &row.id, &root, LIMITS).await, Ok(1));

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
            let refused = apply(&db, "usr-ada", &row.id, &bad, LIMITS).await;
            assert_eq!(refused.map_err(|r| r.code), Err(code), "{bad:.80}");
        }
        let (tree, version) = trees::get(&db, "usr-ada", &row.id).await.unwrap().unwrap();
        assert_eq!(version, 1, "refused patches change nothing");
        assert_eq!(tree, json!({"id": "root", "label": "root", "children": []}));

        assert!(
            apply(&db, "usr-bob", &row.id, &root, LIMITS).await.is_err(),
            "not bob's"
        );
        // A stale base version is refused by the store.
        assert_eq!(
            trees::replace(&db, "usr-ada", &row.id, 0, &json!({}))
                .await
                .unwrap(),
            None
        );
    }
}
