//! A client's edit of its conversation's tree: a JSON Patch (RFC 6902)
//! made against the version the client has, applied only while the tree is
//! still at that version, and within the tree's limits
//! ([`crate::tree_patch`]).

use confab_kit::ApiError;
use confab_protocol::ws::envelope::FrameError;
use serde_json::Value;

use crate::AppState;
use crate::error::ChatError;
use crate::store::trees;
use crate::tree_patch::{PatchRefused, TreePatch};

/// Why an edit was refused.
pub enum Refused {
    /// The tree moved on from `base_version`; the client reloads it.
    Stale {
        current_version: i64,
    },
    Invalid(ApiError),
}

/// Applies `patch` to the tree at `base_version`; the new version.
pub async fn edit(
    state: &AppState,
    user_id: &str,
    conversation_id: &str,
    patch: &Value,
    base_version: i64,
) -> Result<i64, Refused> {
    let limits = state.chat.tree_limits();
    let patch = TreePatch::parse(patch, limits).map_err(Refused::patch)?;
    let (mut tree, version) = trees::get(&state.db, user_id, conversation_id)
        .await
        .map_err(|err| Refused::Invalid(err.into()))?
        .ok_or_else(|| Refused::Invalid(ChatError::ConversationNotFound.into()))?;
    if version != base_version {
        return Err(Refused::Stale {
            current_version: version,
        });
    }
    patch.apply(&mut tree, limits).map_err(Refused::patch)?;
    match trees::replace(&state.db, user_id, conversation_id, base_version, &tree).await {
        Ok(Some(version)) => Ok(version),
        Ok(None) => {
            // Another edit landed between the read and the write.
            let current_version = trees::get(&state.db, user_id, conversation_id)
                .await
                .ok()
                .flatten()
                .map_or(base_version + 1, |(_, v)| v);
            Err(Refused::Stale { current_version })
        }
        Err(err) => Err(Refused::Invalid(err.into())),
    }
}

impl Refused {
    fn patch(refused: PatchRefused) -> Self {
        Refused::Invalid(ChatError::from(refused).into())
    }

    /// The error the client gets.
    pub fn describe(&self) -> FrameError {
        match self {
            Refused::Stale { current_version } => FrameError {
                current_version: Some(*current_version),
                ..FrameError::new(
                    "stale_tree",
                    format!(
                        "the tree is at version {current_version}; reload it and edit that version"
                    ),
                )
            },
            Refused::Invalid(err) => FrameError::new(err.code(), err.message()),
        }
    }
}
