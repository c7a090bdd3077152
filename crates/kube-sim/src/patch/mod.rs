//! Patch algorithms, pure functions on [`serde_json::Value`]: JSON merge patch (RFC 7386), JSON
//! patch (RFC 6902), strategic merge patch (built-in kinds) and server-side apply with
//! `managedFields`.
//!
//! The HTTP layer decides the media type and turns a [`PatchError`] into a `metav1.Status` with
//! [`PatchError::http_status`]; apply conflicts become a 409 through [`apply::ApplyError`].

pub mod apply;
pub mod fieldset;
pub mod list_types;
pub mod strategic;

pub use apply::{
    Applied, ApplyError, Conflict, Tracked, WriteOptions, apply, record_update, to_field_set,
};
pub use fieldset::{FieldSet, PathElement};
pub use list_types::{
    AtomicLists, BuiltinListTypes, ListType, ListTypes, SchemaListTypes, StrategicList,
};
pub use strategic::strategic_merge_patch;

use serde_json::Value;

/// Why a patch could not be applied, with the HTTP status a real API server answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document is malformed (400 Bad Request).
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well-formed but cannot be applied to this object, e.g. a failed JSON patch
    /// `test` or a missing path (422 Unprocessable Entity).
    #[error("{0}")]
    Unprocessable(String),
    /// Strategic merge patch on a kind that does not support it, i.e. a custom resource
    /// (415 Unsupported Media Type).
    #[error(
        "the body of the request was in an unknown format - accepted media types include: \
         application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )]
    StrategicUnsupported,
}

impl PatchError {
    /// The HTTP status code a real API server uses for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::Unprocessable(_) => 422,
            PatchError::StrategicUnsupported => 415,
        }
    }
}

/// Applies a JSON merge patch (RFC 7386, `application/merge-patch+json`) to `target`:
/// objects merge recursively, `null` deletes a key, anything else (including lists) replaces.
///
/// A patch that is not a JSON object replaces the whole document, as RFC 7386 says; the API
/// server then rejects the result when it is not an object, so callers should check.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    json_patch::merge(&mut out, patch);
    out
}

/// Applies a JSON patch (RFC 6902, `application/json-patch+json`) to `target`, including `test`
/// operations. All operations apply or none do.
///
/// Errors: a body that is not a list of operations is [`PatchError::BadRequest`]; an operation
/// that fails is [`PatchError::Unprocessable`] with a message naming the operation and path.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::BadRequest(format!("invalid JSON patch: {e}")))?;
    let mut out = target.clone();
    json_patch::patch(&mut out, &ops)
        .map_err(|e| PatchError::Unprocessable(json_patch_message(&e, ops.0.get(e.operation))))?;
    Ok(out)
}

/// The message of the API server's JSON patch library (evanphx/json-patch) for a failed
/// operation: `testing value /spec/replicas failed: test failed`,
/// `remove operation does not apply: doc is missing path: "/x": missing value`.
fn json_patch_message(
    e: &json_patch::PatchError,
    op: Option<&json_patch::PatchOperation>,
) -> String {
    use json_patch::PatchOperation as Op;
    if matches!(e.kind, json_patch::PatchErrorKind::TestFailed) {
        return format!("testing value {} failed: test failed", e.path);
    }
    let name = match op {
        Some(Op::Add(_)) => "add",
        Some(Op::Remove(_)) => "remove",
        Some(Op::Replace(_)) => "replace",
        Some(Op::Move(_)) => "move",
        Some(Op::Copy(_)) => "copy",
        Some(Op::Test(_)) => "test",
        None => "patch",
    };
    format!(
        "{name} operation does not apply: doc is missing path: \"{}\": missing value",
        e.path
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_table() {
        let cases = [
            // (target, patch, expected)
            (
                json!({"a": 1, "b": 2}),
                json!({"b": 3}),
                json!({"a": 1, "b": 3}),
            ),
            (json!({"a": 1, "b": 2}), json!({"b": null}), json!({"a": 1})),
            (
                json!({"a": {"x": 1, "y": 2}}),
                json!({"a": {"y": null, "z": 3}}),
                json!({"a": {"x": 1, "z": 3}}),
            ),
            (
                json!({"l": [1, 2, 3]}),
                json!({"l": [4]}),
                json!({"l": [4]}),
            ),
            (
                json!({"a": 1}),
                json!({"n": {"deep": null, "k": 1}}),
                json!({"a": 1, "n": {"k": 1}}),
            ),
            (json!({"a": {"b": 1}}), json!({"a": "s"}), json!({"a": "s"})),
        ];
        for (target, patch, expected) in cases {
            assert_eq!(merge_patch(&target, &patch), expected, "patch {patch}");
        }
    }

    #[test]
    fn json_patch_applies_all_operations() {
        let target = json!({"spec": {"replicas": 1, "tags": ["a"]}, "x": 1});
        let patch = json!([
            {"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/spec/tags/-", "value": "b"},
            {"op": "copy", "from": "/x", "path": "/y"},
            {"op": "move", "from": "/x", "path": "/z"},
            {"op": "remove", "path": "/y"},
        ]);
        assert_eq!(
            json_patch(&target, &patch).unwrap(),
            json!({"spec": {"replicas": 3, "tags": ["a", "b"]}, "z": 1})
        );
    }

    #[test]
    fn json_patch_failed_test_is_unprocessable_and_atomic() {
        let target = json!({"spec": {"replicas": 1}});
        let patch = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "test", "path": "/spec/replicas", "value": 1},
        ]);
        let err = json_patch(&target, &patch).unwrap_err();
        assert_eq!(err.http_status(), 422);
        assert_eq!(
            err.to_string(),
            "testing value /spec/replicas failed: test failed"
        );
    }

    #[test]
    fn json_patch_errors() {
        let target = json!({"a": 1});
        let bad = json_patch(&target, &json!({"op": "add"})).unwrap_err();
        assert_eq!(bad.http_status(), 400);
        let missing = json_patch(&target, &json!([{"op": "remove", "path": "/nope"}])).unwrap_err();
        assert_eq!(missing.http_status(), 422);
        assert_eq!(
            missing.to_string(),
            r#"remove operation does not apply: doc is missing path: "/nope": missing value"#
        );
    }
}
