//! A JSON Patch (RFC 6902) on a conversation's tree, within the tree's
//! limits (DESIGN §14): at most `max_ops` operations, and a tree of at most
//! `max_bytes` serialised.
//!
//! Both limits are checked while the patch is applied, before memory is
//! spent: a `copy` names a subtree that the patch would duplicate, so it is
//! measured first and refused when the copy would take the tree past the
//! limit (without the check, `copy /a → /a/-` repeated 25 times doubles an
//! 8 KB string into terabytes). Every other operation can grow the tree by
//! at most what the patch itself carries, which the frame or request limit
//! already bounds. The patch is applied to a copy of the tree that the
//! caller stores only when every operation went through, so a refused patch
//! leaves the tree and its version unchanged.

use std::io;

use json_patch::PatchOperation;
use serde::Deserialize;
use serde_json::Value;

/// The limits of one conversation's tree (`[chat] tree_max_bytes`,
/// `tree_max_patch_ops`).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct TreeLimits {
    /// Largest tree, serialised as JSON.
    pub max_bytes: usize,
    /// Most operations in one patch.
    pub max_ops: usize,
}

/// Why a patch was refused; the tree is then unchanged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchRefused {
    #[error("{0}")]
    Invalid(String),
    #[error("the patch has {ops} operations; at most {max} are allowed")]
    TooManyOps { ops: usize, max: usize },
    #[error("the patch would make the tree {size} bytes or more; at most {max} are allowed")]
    TreeTooLarge { size: usize, max: usize },
}

impl PatchRefused {
    /// The error code clients see (DESIGN §14).
    pub fn code(&self) -> &'static str {
        match self {
            PatchRefused::Invalid(_) => "invalid_patch",
            PatchRefused::TooManyOps { .. } => "patch_too_large",
            PatchRefused::TreeTooLarge { .. } => "tree_too_large",
        }
    }
}

/// A patch that is a JSON Patch and within the operation limit.
#[derive(Debug)]
pub struct TreePatch(Vec<PatchOperation>);

impl TreePatch {
    /// Reads `patch` (the array of operations as sent) after checking how
    /// many operations it has, so an oversized one is refused unread.
    pub fn parse(patch: &Value, limits: TreeLimits) -> Result<Self, PatchRefused> {
        let ops = patch.as_array().ok_or_else(|| {
            PatchRefused::Invalid("a patch is an array of JSON Patch operations".into())
        })?;
        if ops.len() > limits.max_ops {
            return Err(PatchRefused::TooManyOps {
                ops: ops.len(),
                max: limits.max_ops,
            });
        }
        ops.iter()
            .map(PatchOperation::deserialize)
            .collect::<Result<_, _>>()
            .map(Self)
            .map_err(|err| PatchRefused::Invalid(format!("the patch is not a JSON Patch: {err}")))
    }

    /// Applies the patch to `tree`, operation by operation. On `Err` the
    /// tree is partly patched: the caller drops it. A tree already over
    /// `max_bytes` (the limit was lowered since) may shrink but not grow.
    pub fn apply(&self, tree: &mut Value, limits: TreeLimits) -> Result<(), PatchRefused> {
        let mut size = serialised_len(tree);
        let ceiling = limits.max_bytes.max(size);
        // The size is measured again only when this bound on it passes the
        // ceiling: a tree far below it is not re-serialised per operation.
        let mut bound = size;
        for op in &self.0 {
            let copied = match op {
                PatchOperation::Copy(copy) => {
                    let copied = tree.pointer(copy.from.as_str()).map_or(0, serialised_len);
                    if bound.saturating_add(copied) > ceiling {
                        size = serialised_len(tree);
                        bound = size;
                        if size.saturating_add(copied) > ceiling {
                            return Err(too_large(limits, size.saturating_add(copied)));
                        }
                    }
                    copied
                }
                _ => 0,
            };
            json_patch::patch(tree, std::slice::from_ref(op)).map_err(|err| {
                PatchRefused::Invalid(format!("the patch does not apply to the tree: {err}"))
            })?;
            bound = bound.saturating_add(growth_bound(op, copied));
            if bound > ceiling {
                size = serialised_len(tree);
                bound = size;
                if size > ceiling {
                    return Err(too_large(limits, size));
                }
            }
        }
        Ok(())
    }
}

/// How much one applied operation can have grown the serialised tree, at
/// most: the value it put in (`copied` for a copy), and its key (a pointer
/// token escapes to at most six JSON bytes a character) with its quotes,
/// colon and comma.
fn growth_bound(op: &PatchOperation, copied: usize) -> usize {
    let key = |path: &json_patch::jsonptr::Pointer| {
        path.last()
            .map_or(0, |token| token.decoded().len().saturating_mul(6))
            .saturating_add(4)
    };
    match op {
        PatchOperation::Add(add) => serialised_len(&add.value).saturating_add(key(&add.path)),
        PatchOperation::Replace(replace) => {
            serialised_len(&replace.value).saturating_add(key(&replace.path))
        }
        PatchOperation::Copy(copy) => copied.saturating_add(key(&copy.path)),
        PatchOperation::Move(moved) => key(&moved.path),
        PatchOperation::Remove(_) | PatchOperation::Test(_) => 0,
    }
}

fn too_large(limits: TreeLimits, size: usize) -> PatchRefused {
    PatchRefused::TreeTooLarge {
        size,
        max: limits.max_bytes,
    }
}

/// The length of `value` serialised as compact JSON, counted without
/// building the text.
pub fn serialised_len(value: &Value) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a Value to a sink cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_kit::fuzz;
    use proptest::prelude::*;
    use serde_json::json;

    const LIMITS: TreeLimits = TreeLimits {
        max_bytes: 256 * 1024,
        max_ops: 100,
    };

    fn doubling_patch(copies: usize) -> Value {
        let mut ops = vec![json!({"op": "add", "path": "/a", "value": ["x".repeat(8000)]})];
        ops.extend((0..copies).map(|_| json!({"op": "copy", "from": "/a", "path": "/a/-"})));
        Value::Array(ops)
    }

    #[test]
    fn a_copy_that_would_pass_the_limit_stops_there() {
        let patch = TreePatch::parse(&doubling_patch(25), LIMITS).unwrap();
        let mut tree = json!({});
        let err = patch.apply(&mut tree, LIMITS).unwrap_err();
        assert_eq!(err.code(), "tree_too_large");
        assert!(
            serialised_len(&tree) <= LIMITS.max_bytes,
            "never built past the limit"
        );
    }

    #[test]
    fn a_patch_within_the_limits_applies() {
        let patch = TreePatch::parse(&doubling_patch(4), LIMITS).unwrap();
        let mut tree = json!({});
        patch.apply(&mut tree, LIMITS).unwrap();
        assert_eq!(tree["a"].as_array().unwrap().len(), 5);
        assert_eq!(serialised_len(&tree), tree.to_string().len());
    }

    #[test]
    fn too_many_operations_are_refused_unread() {
        let ops: Vec<Value> = (0..101).map(|_| json!({"op": "explode"})).collect();
        let err = TreePatch::parse(&Value::Array(ops), LIMITS).unwrap_err();
        assert_eq!(err.code(), "patch_too_large");
    }

    #[test]
    fn adding_past_the_limit_is_refused_and_shrinking_an_oversized_tree_is_not() {
        let small = TreeLimits {
            max_bytes: 100,
            max_ops: 100,
        };
        let grow = TreePatch::parse(
            &json!([{"op": "add", "path": "/big", "value": "y".repeat(200)}]),
            small,
        )
        .unwrap();
        let mut tree = json!({});
        assert_eq!(
            grow.apply(&mut tree, small).unwrap_err().code(),
            "tree_too_large"
        );

        let mut oversized = json!({"big": "y".repeat(200), "b": 1});
        let shrink = TreePatch::parse(&json!([{"op": "remove", "path": "/b"}]), small).unwrap();
        shrink.apply(&mut oversized, small).unwrap();
    }

    /// One operation as a client could write it: mostly well-formed, with
    /// pointers into the kind of tree it patches, sometimes anything.
    fn operation() -> impl Strategy<Value = Value> {
        let pointer = prop_oneof![
            prop::sample::select(vec!["", "/a", "/a/-", "/a/0", "/b", "/a/0/x", "/~1", "/-"])
                .prop_map(str::to_owned),
            any::<String>(),
        ];
        let op = prop::sample::select(vec!["add", "remove", "replace", "move", "copy", "test"]);
        prop_oneof![
            4 => (op, pointer.clone(), pointer, fuzz::json()).prop_map(|(op, path, from, value)| {
                json!({"op": op, "path": path, "from": from, "value": value})
            }),
            1 => fuzz::json(),
        ]
    }

    #[test]
    fn fuzz_tree_patches_stay_within_the_limits_or_are_refused() {
        let limits = TreeLimits {
            max_bytes: 4096,
            max_ops: 16,
        };
        let doubling = (0..30)
            .map(|_| json!({"op": "copy", "from": "/a", "path": "/a/-"}))
            .collect::<Vec<_>>();
        let patches = prop_oneof![
            4 => prop::collection::vec(operation(), 0..20).prop_map(Value::Array),
            1 => fuzz::json(),
            1 => (fuzz::json(), 0..30usize).prop_map(move |(value, copies)| {
                let mut ops = vec![json!({"op": "add", "path": "/a", "value": [value]})];
                ops.extend(doubling[..copies].iter().cloned());
                Value::Array(ops)
            }),
        ];
        let trees = prop_oneof![Just(json!({})), Just(json!({"a": [1]})), fuzz::json()];
        fuzz::fuzz((trees, patches), |(tree, patch)| {
            let initial = serialised_len(&tree);
            match TreePatch::parse(&patch, limits) {
                Err(PatchRefused::TooManyOps { ops, .. }) => prop_assert!(ops > limits.max_ops),
                Err(refused) => prop_assert_eq!(refused.code(), "invalid_patch"),
                Ok(parsed) => {
                    let mut patched = tree.clone();
                    match parsed.apply(&mut patched, limits) {
                        Ok(()) => prop_assert!(
                            serialised_len(&patched) <= limits.max_bytes.max(initial),
                            "a patch that applied left the tree over the limit"
                        ),
                        Err(refused) => prop_assert!(
                            matches!(refused.code(), "invalid_patch" | "tree_too_large"),
                            "{refused}"
                        ),
                    }
                }
            }
            Ok(())
        });
    }

    #[test]
    fn anything_that_is_not_a_json_patch_is_invalid() {
        for bad in [
            json!({"op": "add"}),
            json!("x"),
            json!([{"op": "explode", "path": ""}]),
        ] {
            assert_eq!(
                TreePatch::parse(&bad, LIMITS).unwrap_err().code(),
                "invalid_patch",
                "{bad}"
            );
        }
    }
}
