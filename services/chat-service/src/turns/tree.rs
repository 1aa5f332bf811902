//! Applying an agent's `tree_patch` (RFC 6902) to its conversation's tree.

use confab_kit::db::Db;
use serde_json::Value;

use crate::store::trees;

/// Attempts when the tree changes between reading and writing it (another
/// edit landed); the patch is checked again against each newer tree.
const ATTEMPTS: usize = 3;

/// Applies `patch` to the conversation's tree and stores the result as the
/// next version. `Err` says why the patch was refused (not a JSON Patch, or
/// it does not apply); the tree is then unchanged.
pub async fn apply(
    db: &Db,
    user_id: &str,
    conversation_id: &str,
    patch: &Value,
) -> Result<i64, String> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|err| format!("the agent's tree_patch is not a JSON Patch: {err}"))?;
    for _ in 0..ATTEMPTS {
        let (mut tree, version) = trees::get(db, user_id, conversation_id)
            .await
            .map_err(|err| format!("reading the tree failed: {err}"))?
            .ok_or("the conversation is gone")?;
        json_patch::patch(&mut tree, &ops)
            .map_err(|err| format!("the agent's tree_patch does not apply to the tree: {err}"))?;
        match trees::replace(db, user_id, conversation_id, version, &tree).await {
            Ok(Some(version)) => return Ok(version),
            Ok(None) => continue,
            Err(err) => return Err(format!("saving the tree failed: {err}")),
        }
    }
    Err("the tree kept changing while the patch was applied".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{conversations, trees};
    use confab_kit::testing::TestDatabase;
    use serde_json::json;

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
        assert_eq!(apply(&db, "usr-ada", &row.id, &root).await, Ok(1));

        for bad in [
            json!([{"op": "remove", "path": "/children/5"}]),
            json!([{"op": "explode", "path": ""}]),
            json!({"not": "a patch"}),
        ] {
            let refused = apply(&db, "usr-ada", &row.id, &bad).await;
            assert!(refused.is_err(), "{bad}");
        }
        let (tree, version) = trees::get(&db, "usr-ada", &row.id).await.unwrap().unwrap();
        assert_eq!(version, 1, "refused patches change nothing");
        assert_eq!(tree, json!({"id": "root", "label": "root", "children": []}));

        assert!(
            apply(&db, "usr-bob", &row.id, &root).await.is_err(),
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
