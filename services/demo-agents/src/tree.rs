//! The tree agent's working copy of the conversation's tree, and the four
//! edits its tools make to it, each recorded as RFC 6902 JSON Patch ops.
//!
//! # The tree document
//!
//! A conversation's tree (`metadata.confab.tree`, DESIGN §8) is its root
//! node, and every node has the same shape:
//!
//! ```json
//! {"id": "root", "label": "Shopping", "children": [
//!     {"id": "fruits", "label": "Fruits", "children": []}
//! ]}
//! ```
//!
//! - `id` is a non-empty string, unique in the tree; `label` a string;
//!   `children` an array of nodes, in display order. A node without
//!   `children` is a leaf, one without `label` unlabelled; other fields are
//!   carried along untouched.
//! - The empty tree is [`empty`]: `{"id":"root","label":"root","children":[]}`.
//!   A conversation without a tree (the key absent or `null`) has it; so has
//!   one whose tree is `{}` (what chat-service stores for a new
//!   conversation), and then the patch starts by replacing that `{}` with the
//!   empty tree, so it applies to the document exactly as it was given.
//! - Nodes are added as `{"id", "label", "children": []}` at the end of
//!   their parent's children; a moved node goes to the end of its new
//!   parent's children.
//!
//! # Ids
//!
//! A node added without an id gets the slug of its label: lower case, each
//! run of characters other than letters and digits turned into one `-`, none
//! at either end ("Red Apples!" → `red-apples`). A node is referred to (by
//! `parent_id`, `id`, `new_parent_id`) by its id; a reference that is no id
//! is tried once more as a slug, so "Fruits" finds `fruits`: a model (or a
//! fixture) that only has the label a user typed still finds the node.
//!
//! # Patches
//!
//! Paths address nodes through array indexes (`/children/0/children/1`),
//! the root being `""`. Every edit is applied to the working copy with the
//! `json-patch` crate before it is recorded, so the accumulated patch is
//! known to apply, in order, to the tree the task was given, and later edits
//! in the same task see earlier ones.

use std::collections::HashSet;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, MoveOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::{Map, Value, json};

/// The id of the empty tree's root.
pub const ROOT_ID: &str = "root";

/// The tree of a conversation that has none yet.
pub fn empty() -> Value {
    json!({"id": ROOT_ID, "label": ROOT_ID, "children": []})
}

/// Why an edit was refused; shown to the model as the tool's result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("the conversation's tree is not a tree document: {0}")]
    NotATree(String),
    #[error("there is no node with id '{0}'")]
    UnknownNode(String),
    #[error("a node with id '{0}' already exists")]
    DuplicateId(String),
    #[error("the root node cannot be removed")]
    RemoveRoot,
    #[error("the root node cannot be moved")]
    MoveRoot,
    #[error("node '{0}' cannot be moved under itself")]
    MoveUnderItself(String),
    #[error("node '{id}' cannot be moved under its own descendant '{under}'")]
    MoveUnderDescendant { id: String, under: String },
    #[error("a label must not be empty")]
    EmptyLabel,
    #[error("an id must not be empty")]
    EmptyId,
    #[error("the label '{0}' gives no id (it has no letters or digits); pass an id")]
    NoIdFromLabel(String),
    /// A computed patch did not apply: a bug here, never the caller's fault.
    #[error("the edit could not be applied: {0}")]
    Patch(String),
}

/// A task's copy of the tree, with the patch that leads to it from the tree
/// the task was given.
#[derive(Debug, Clone)]
pub struct WorkingTree {
    document: Value,
    /// Why the given document is not a tree; every edit is refused with it.
    invalid: Option<String>,
    /// The given document was `{}`: the first edit replaces it with the
    /// empty tree before anything else.
    replace_first: bool,
    patch: Vec<PatchOperation>,
}

impl WorkingTree {
    pub fn new(document: Value) -> Self {
        let replace_first = document.as_object().is_some_and(Map::is_empty);
        let document = if replace_first || document.is_null() {
            empty()
        } else {
            document
        };
        let invalid = check_node(&document, &mut HashSet::new()).err();
        Self {
            document,
            invalid,
            replace_first,
            patch: Vec::new(),
        }
    }

    /// The tree as the edits so far left it.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// The ops of every edit so far, in order; empty when nothing changed.
    pub fn patch(&self) -> &[PatchOperation] {
        &self.patch
    }

    /// Adds `{id, label, children: []}` as the last child of `parent`; the
    /// id, when not given, is the label's slug.
    pub fn add_node(
        &mut self,
        parent: &str,
        id: Option<&str>,
        label: &str,
    ) -> Result<String, TreeError> {
        self.usable()?;
        let parent_path = self.resolve(parent)?;
        let label = label.trim();
        if label.is_empty() {
            return Err(TreeError::EmptyLabel);
        }
        let id = match id.map(str::trim) {
            Some("") => return Err(TreeError::EmptyId),
            Some(id) => id.to_owned(),
            None => {
                let id = slug(label);
                if id.is_empty() {
                    return Err(TreeError::NoIdFromLabel(label.to_owned()));
                }
                id
            }
        };
        if find(&self.document, &id).is_some() {
            return Err(TreeError::DuplicateId(id));
        }
        let parent_node = self.node(&parent_path);
        let parent_id = id_of(parent_node).to_owned();
        let mut ops = Vec::new();
        if !has_children_array(parent_node) {
            ops.push(add(child_list(&parent_path), json!([])));
        }
        ops.push(add(
            append_to(&parent_path),
            json!({"id": id, "label": label, "children": []}),
        ));
        self.apply(ops)?;
        Ok(format!("added node {id} ({label}) under {parent_id}"))
    }

    /// Removes a node and everything under it.
    pub fn remove_node(&mut self, reference: &str) -> Result<String, TreeError> {
        self.usable()?;
        let path = self.resolve(reference)?;
        if path.is_empty() {
            return Err(TreeError::RemoveRoot);
        }
        let node = self.node(&path);
        let (id, label) = (id_of(node).to_owned(), label_of(node).to_owned());
        let below = count_nodes(node) - 1;
        self.apply(vec![PatchOperation::Remove(RemoveOperation {
            path: pointer(&path),
        })])?;
        Ok(match below {
            0 => format!("removed node {id} ({label})"),
            1 => format!("removed node {id} ({label}) and the node under it"),
            n => format!("removed node {id} ({label}) and the {n} nodes under it"),
        })
    }

    /// Gives a node a new label; its id stays, so references to it hold.
    pub fn rename_node(&mut self, reference: &str, label: &str) -> Result<String, TreeError> {
        self.usable()?;
        let path = self.resolve(reference)?;
        let label = label.trim();
        if label.is_empty() {
            return Err(TreeError::EmptyLabel);
        }
        let node = self.node(&path);
        let (id, old) = (id_of(node).to_owned(), label_of(node).to_owned());
        let mut label_path = pointer(&path);
        label_path.push_back("label");
        let op = if node.get("label").is_some() {
            PatchOperation::Replace(ReplaceOperation {
                path: label_path,
                value: json!(label),
            })
        } else {
            add(label_path, json!(label))
        };
        self.apply(vec![op])?;
        Ok(format!("renamed node {id} from {old} to {label}"))
    }

    /// Moves a node, with everything under it, to the end of another node's
    /// children.
    pub fn move_node(&mut self, reference: &str, new_parent: &str) -> Result<String, TreeError> {
        self.usable()?;
        let path = self.resolve(reference)?;
        let target = self.resolve(new_parent)?;
        let id = id_of(self.node(&path)).to_owned();
        let target_node = self.node(&target);
        let target_id = id_of(target_node).to_owned();
        let Some((&index, parent)) = path.split_last() else {
            return Err(TreeError::MoveRoot);
        };
        if target == path {
            return Err(TreeError::MoveUnderItself(id));
        }
        if target.starts_with(&path) {
            return Err(TreeError::MoveUnderDescendant {
                id,
                under: target_id,
            });
        }
        let mut ops = Vec::new();
        if !has_children_array(target_node) {
            // An object member: adding it shifts no array index.
            ops.push(add(child_list(&target), json!([])));
        }
        // A move's `path` is read after its `from` is removed (RFC 6902
        // §4.4): a later sibling of the moved node, or a node under one,
        // sits one index lower by then.
        let mut target_after = target.clone();
        if target_after.len() > parent.len()
            && target_after.starts_with(parent)
            && target_after[parent.len()] > index
        {
            target_after[parent.len()] -= 1;
        }
        let mut from = path.clone();
        if target_after.starts_with(&from) {
            // The new parent is the next sibling (or under it): its path
            // after the removal starts with `from`, which §4.4 forbids. The
            // node first moves to the end of its siblings, out of the way;
            // the new parent is then already where `target_after` says.
            let last = self.node(parent)["children"]
                .as_array()
                .map_or(0, |siblings| siblings.len().saturating_sub(1));
            ops.push(PatchOperation::Move(MoveOperation {
                from: pointer(&from),
                path: append_to(parent),
            }));
            from = [parent, &[last]].concat();
        }
        ops.push(PatchOperation::Move(MoveOperation {
            from: pointer(&from),
            path: append_to(&target_after),
        }));
        self.apply(ops)?;
        Ok(format!("moved node {id} under {target_id}"))
    }

    fn usable(&self) -> Result<(), TreeError> {
        match &self.invalid {
            Some(why) => Err(TreeError::NotATree(why.clone())),
            None => Ok(()),
        }
    }

    /// The index path of the node `reference` names: its id, else its slug.
    fn resolve(&self, reference: &str) -> Result<Vec<usize>, TreeError> {
        let reference = reference.trim();
        find(&self.document, reference)
            .or_else(|| find(&self.document, &slug(reference)))
            .ok_or_else(|| TreeError::UnknownNode(reference.to_owned()))
    }

    /// The node at an index path that `resolve` (or a parent of it) gave.
    fn node(&self, path: &[usize]) -> &Value {
        path.iter()
            .fold(&self.document, |node, &i| &node["children"][i])
    }

    /// Applies `ops` to the working copy (all or none) and records them.
    fn apply(&mut self, ops: Vec<PatchOperation>) -> Result<(), TreeError> {
        json_patch::patch(&mut self.document, &ops)
            .map_err(|err| TreeError::Patch(err.to_string()))?;
        if std::mem::take(&mut self.replace_first) {
            self.patch.push(add(PointerBuf::new(), empty()));
        }
        self.patch.extend(ops);
        Ok(())
    }
}

/// A label's id: lower case, runs of other characters than letters and
/// digits as one `-`, none at the ends.
pub fn slug(label: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for ch in label.chars() {
        if ch.is_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.extend(ch.to_lowercase());
        } else {
            dash = true;
        }
    }
    out
}

/// Checks a node and everything under it; ids seen so far in `ids`. The
/// depth is bounded by serde_json's nesting limit (128) on the request.
fn check_node(node: &Value, ids: &mut HashSet<String>) -> Result<(), String> {
    let Some(object) = node.as_object() else {
        return Err(format!("a node is not an object: {node}"));
    };
    let id = match object.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id,
        _ => return Err("a node has no id (a non-empty string)".into()),
    };
    if !ids.insert(id.to_owned()) {
        return Err(format!("the id '{id}' appears twice"));
    }
    if object.get("label").is_some_and(|l| !l.is_string()) {
        return Err(format!("the label of '{id}' is not a string"));
    }
    match object.get("children") {
        None => Ok(()),
        Some(Value::Array(children)) => children.iter().try_for_each(|c| check_node(c, ids)),
        Some(_) => Err(format!("the children of '{id}' are not an array")),
    }
}

/// The index path of the node with this id.
fn find(node: &Value, id: &str) -> Option<Vec<usize>> {
    if node.get("id").and_then(Value::as_str) == Some(id) {
        return Some(Vec::new());
    }
    let children = node.get("children")?.as_array()?;
    children.iter().enumerate().find_map(|(i, child)| {
        let mut path = find(child, id)?;
        path.insert(0, i);
        Some(path)
    })
}

fn count_nodes(node: &Value) -> usize {
    1 + node
        .get("children")
        .and_then(Value::as_array)
        .map_or(0, |children| children.iter().map(count_nodes).sum())
}

fn id_of(node: &Value) -> &str {
    node.get("id").and_then(Value::as_str).unwrap_or_default()
}

fn label_of(node: &Value) -> &str {
    node.get("label")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn has_children_array(node: &Value) -> bool {
    node.get("children").is_some_and(Value::is_array)
}

/// The JSON Pointer of the node at an index path.
fn pointer(path: &[usize]) -> PointerBuf {
    let mut pointer = PointerBuf::new();
    for &i in path {
        pointer.push_back("children");
        pointer.push_back(i);
    }
    pointer
}

/// The pointer of a node's `children` array.
fn child_list(path: &[usize]) -> PointerBuf {
    let mut pointer = pointer(path);
    pointer.push_back("children");
    pointer
}

/// The pointer past the end of a node's children (`…/children/-`).
fn append_to(path: &[usize]) -> PointerBuf {
    let mut pointer = child_list(path);
    pointer.push_back("-");
    pointer
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// root ─ fruits ─ apples
    ///      │        └ pears
    ///      └ veggies
    fn garden() -> Value {
        json!({"id": "root", "label": "Garden", "children": [
            {"id": "fruits", "label": "Fruits", "children": [
                {"id": "apples", "label": "Apples", "children": []},
                {"id": "pears", "label": "Pears", "children": []}
            ]},
            {"id": "veggies", "label": "Veggies", "children": []}
        ]})
    }

    fn patch_json(tree: &WorkingTree) -> Value {
        serde_json::to_value(tree.patch()).unwrap()
    }

    /// The recorded patch, applied to `original`, gives the working copy.
    fn assert_patch_replays(tree: &WorkingTree, original: Value) {
        let mut replayed = original;
        json_patch::patch(&mut replayed, tree.patch()).unwrap();
        assert_eq!(&replayed, tree.document());
    }

    #[test]
    fn adding_a_node_appends_it_to_its_parent_with_its_label_as_id() {
        let mut tree = WorkingTree::new(garden());
        let said = tree.add_node("fruits", None, "Red Cherries").unwrap();
        assert_eq!(said, "added node red-cherries (Red Cherries) under fruits");
        assert_eq!(
            patch_json(&tree),
            json!([{"op": "add", "path": "/children/0/children/-",
                    "value": {"id": "red-cherries", "label": "Red Cherries", "children": []}}])
        );
        assert_eq!(
            tree.document()["children"][0]["children"][2]["id"],
            "red-cherries"
        );
        assert_patch_replays(&tree, garden());
    }

    #[test]
    fn a_given_id_is_used_as_it_is() {
        let mut tree = WorkingTree::new(garden());
        tree.add_node("root", Some("Herbs-1"), "Herbs").unwrap();
        assert_eq!(tree.document()["children"][2]["id"], "Herbs-1");
    }

    #[test]
    fn a_reference_that_is_no_id_is_tried_as_a_slug() {
        let mut tree = WorkingTree::new(garden());
        tree.add_node("Fruits", None, "Plums").unwrap();
        assert_eq!(tree.document()["children"][0]["children"][2]["id"], "plums");
    }

    #[test]
    fn slugs_are_lower_case_words_joined_by_dashes() {
        assert_eq!(slug("Red Apples!"), "red-apples");
        assert_eq!(slug("  --Fruits & Nuts--  "), "fruits-nuts");
        assert_eq!(slug("Äpfel"), "äpfel");
        assert_eq!(slug("!!!"), "");
    }

    #[test]
    fn edits_build_on_each_other_and_the_whole_patch_replays() {
        let mut tree = WorkingTree::new(garden());
        tree.add_node("root", None, "Nuts").unwrap();
        tree.add_node("nuts", None, "Walnuts").unwrap();
        tree.rename_node("nuts", "Nuts and seeds").unwrap();
        tree.move_node("apples", "veggies").unwrap();
        tree.remove_node("pears").unwrap();
        assert_eq!(
            tree.document(),
            &json!({"id": "root", "label": "Garden", "children": [
                {"id": "fruits", "label": "Fruits", "children": []},
                {"id": "veggies", "label": "Veggies", "children": [
                    {"id": "apples", "label": "Apples", "children": []}
                ]},
                {"id": "nuts", "label": "Nuts and seeds", "children": [
                    {"id": "walnuts", "label": "Walnuts", "children": []}
                ]}
            ]})
        );
        assert_eq!(tree.patch().len(), 5);
        assert_patch_replays(&tree, garden());
    }

    #[test]
    fn renaming_replaces_the_label_and_keeps_the_id() {
        let mut tree = WorkingTree::new(garden());
        let said = tree.rename_node("fruits", "Produce").unwrap();
        assert_eq!(said, "renamed node fruits from Fruits to Produce");
        assert_eq!(
            patch_json(&tree),
            json!([{"op": "replace", "path": "/children/0/label", "value": "Produce"}])
        );
        assert_patch_replays(&tree, garden());
    }

    #[test]
    fn removing_a_node_takes_its_subtree_with_it() {
        let mut tree = WorkingTree::new(garden());
        let said = tree.remove_node("fruits").unwrap();
        assert_eq!(
            said,
            "removed node fruits (Fruits) and the 2 nodes under it"
        );
        assert_eq!(
            patch_json(&tree),
            json!([{"op": "remove", "path": "/children/0"}])
        );
        assert_eq!(
            tree.document()["children"],
            json!([garden()["children"][1]])
        );
        assert_patch_replays(&tree, garden());
    }

    #[test]
    fn moving_under_a_later_sibling_accounts_for_the_removed_index() {
        let original = json!({"id": "root", "label": "r", "children": [
            {"id": "a"}, {"id": "b"}, {"id": "c", "children": []}
        ]});
        let mut tree = WorkingTree::new(original.clone());
        tree.move_node("a", "c").unwrap();
        // c is /children/2 before the move, /children/1 once a is out.
        assert_eq!(
            patch_json(&tree),
            json!([{"op": "move", "from": "/children/0", "path": "/children/1/children/-"}])
        );
        assert_patch_replays(&tree, original);
    }

    #[test]
    fn moving_under_the_next_sibling_steps_aside_first() {
        let mut tree = WorkingTree::new(garden());
        tree.move_node("fruits", "veggies").unwrap();
        // One move to /children/0/children/- would be refused: its path
        // starts with its from (RFC 6902 §4.4).
        assert_eq!(
            patch_json(&tree),
            json!([
                {"op": "move", "from": "/children/0", "path": "/children/-"},
                {"op": "move", "from": "/children/1", "path": "/children/0/children/-"}
            ])
        );
        assert_eq!(tree.document()["children"].as_array().unwrap().len(), 1);
        assert_eq!(tree.document()["children"][0]["id"], "veggies");
        assert_eq!(
            tree.document()["children"][0]["children"][0]["id"],
            "fruits"
        );
        assert_patch_replays(&tree, garden());
    }

    #[test]
    fn moving_under_an_earlier_node_or_the_root_keeps_its_indexes() {
        let mut tree = WorkingTree::new(garden());
        tree.move_node("veggies", "apples").unwrap();
        tree.move_node("pears", "root").unwrap();
        assert_eq!(
            patch_json(&tree),
            json!([
                {"op": "move", "from": "/children/1", "path": "/children/0/children/0/children/-"},
                {"op": "move", "from": "/children/0/children/1", "path": "/children/-"}
            ])
        );
        assert_patch_replays(&tree, garden());
    }

    #[test]
    fn a_leaf_without_children_gets_a_children_list_first() {
        let original = json!({"id": "root", "label": "r", "children": [{"id": "leaf"}]});
        let mut tree = WorkingTree::new(original.clone());
        tree.add_node("leaf", None, "Child").unwrap();
        tree.rename_node("leaf", "Leaf").unwrap();
        assert_eq!(
            patch_json(&tree),
            json!([
                {"op": "add", "path": "/children/0/children", "value": []},
                {"op": "add", "path": "/children/0/children/-",
                 "value": {"id": "child", "label": "Child", "children": []}},
                {"op": "add", "path": "/children/0/label", "value": "Leaf"}
            ])
        );
        assert_patch_replays(&tree, original);
    }

    #[test]
    fn an_empty_object_is_the_empty_tree_and_the_patch_replaces_it_first() {
        let mut tree = WorkingTree::new(json!({}));
        tree.add_node("root", None, "Fruits").unwrap();
        assert_eq!(
            patch_json(&tree),
            json!([
                {"op": "add", "path": "", "value": {"id": "root", "label": "root", "children": []}},
                {"op": "add", "path": "/children/-",
                 "value": {"id": "fruits", "label": "Fruits", "children": []}}
            ])
        );
        assert_patch_replays(&tree, json!({}));
    }

    #[test]
    fn null_is_the_empty_tree() {
        let mut tree = WorkingTree::new(Value::Null);
        assert_eq!(tree.document(), &empty());
        tree.add_node("root", None, "Fruits").unwrap();
        assert_eq!(tree.patch().len(), 1);
        assert_patch_replays(&tree, empty());
    }

    #[test]
    fn unknown_ids_are_refused_and_leave_no_patch() {
        let mut tree = WorkingTree::new(garden());
        let unknown = |id: &str| Err(TreeError::UnknownNode(id.into()));
        assert_eq!(tree.add_node("nuts", None, "Walnuts"), unknown("nuts"));
        assert_eq!(tree.remove_node("nuts"), unknown("nuts"));
        assert_eq!(tree.rename_node("nuts", "Seeds"), unknown("nuts"));
        assert_eq!(tree.move_node("nuts", "root"), unknown("nuts"));
        assert_eq!(tree.move_node("apples", "nuts"), unknown("nuts"));
        assert!(tree.patch().is_empty());
        assert_eq!(tree.document(), &garden());
    }

    #[test]
    fn a_duplicate_id_is_refused() {
        let mut tree = WorkingTree::new(garden());
        assert_eq!(
            tree.add_node("veggies", None, "Apples"),
            Err(TreeError::DuplicateId("apples".into()))
        );
        assert_eq!(
            tree.add_node("veggies", Some("root"), "Another root"),
            Err(TreeError::DuplicateId("root".into()))
        );
        assert!(tree.patch().is_empty());
    }

    #[test]
    fn a_node_cannot_move_under_itself_or_its_descendants() {
        let mut tree = WorkingTree::new(garden());
        assert_eq!(
            tree.move_node("fruits", "fruits"),
            Err(TreeError::MoveUnderItself("fruits".into()))
        );
        assert_eq!(
            tree.move_node("fruits", "pears"),
            Err(TreeError::MoveUnderDescendant {
                id: "fruits".into(),
                under: "pears".into()
            })
        );
        assert_eq!(tree.move_node("root", "veggies"), Err(TreeError::MoveRoot));
        assert!(tree.patch().is_empty());
    }

    #[test]
    fn the_root_cannot_be_removed() {
        let mut tree = WorkingTree::new(garden());
        assert_eq!(tree.remove_node("root"), Err(TreeError::RemoveRoot));
        assert!(tree.patch().is_empty());
    }

    #[test]
    fn empty_labels_and_ids_are_refused() {
        let mut tree = WorkingTree::new(garden());
        assert_eq!(
            tree.add_node("root", None, "  "),
            Err(TreeError::EmptyLabel)
        );
        assert_eq!(
            tree.add_node("root", Some(" "), "Nuts"),
            Err(TreeError::EmptyId)
        );
        assert_eq!(
            tree.add_node("root", None, "!!!"),
            Err(TreeError::NoIdFromLabel("!!!".into()))
        );
        assert_eq!(tree.rename_node("fruits", ""), Err(TreeError::EmptyLabel));
        assert!(tree.patch().is_empty());
    }

    #[test]
    fn a_document_that_is_not_a_tree_refuses_every_edit() {
        for document in [
            json!([1, 2]),
            json!({"label": "no id"}),
            json!({"id": "root", "children": {"not": "a list"}}),
            json!({"id": "root", "children": [{"id": "a"}, {"id": "a"}]}),
        ] {
            let mut tree = WorkingTree::new(document);
            let refused = tree.add_node("root", None, "Fruits");
            assert!(
                matches!(refused, Err(TreeError::NotATree(_))),
                "{refused:?}"
            );
            assert!(tree.patch().is_empty());
        }
    }
}
