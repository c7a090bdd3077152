//! Server-side apply of owned objects, skipping the request when the live object already
//! carries every field the operator wants.
//!
//! Operators reconcile often; sending an apply for an object that is already converged costs an
//! API request (and a write in request accounting) for nothing. [`is_subset`] decides, from the
//! desired JSON and the live object, whether an apply would change anything the operator owns:
//! fields the API server or other managers added (defaults, status, other owners' fields) are
//! ignored, while any desired field that differs, or a list whose length differs, triggers an apply.

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Whether every field of `desired` is present with the same value in `live`.
///
/// Objects are compared key by key (extra keys in `live` are fine); lists must have the same
/// length and be element-wise subsets (so an element the operator removed is noticed); scalars
/// must be equal. `null` in `desired` matches a missing or `null` field.
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(want), Value::Object(have)) => {
            want.iter().all(|(key, value)| match have.get(key) {
                Some(actual) => is_subset(value, actual),
                None => value.is_null(),
            })
        }
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| is_subset(w, h))
        }
        (Value::Null, Value::Null) => true,
        (want, have) => want == have,
    }
}

/// Whether `desired` must be applied over `live` (missing, or some desired field differs).
pub fn needs_apply(desired: &Value, live: Option<&Value>) -> bool {
    live.is_none_or(|live| !is_subset(desired, live))
}

/// Server-side applies `desired` (a full object with `apiVersion`, `kind` and `metadata.name`,
/// as JSON: a `Value` or JSON text in a `RawValue`) as `field_manager`, forcing ownership of
/// conflicting fields.
pub async fn apply<K, P>(
    api: &Api<K>,
    name: &str,
    desired: &P,
    field_manager: &str,
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    P: Serialize + std::fmt::Debug + ?Sized,
{
    api.patch(
        name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(desired),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_table() {
        let cases = [
            (
                json!({"a": 1}),
                json!({"a": 1, "b": 2}),
                true,
                "extra live keys are fine",
            ),
            (json!({"a": 1}), json!({"a": 2}), false, "changed scalar"),
            (json!({"a": 1}), json!({}), false, "missing key"),
            (json!({"a": null}), json!({}), true, "null matches missing"),
            (
                json!({"l": [{"n": "x"}]}),
                json!({"l": [{"n": "x", "d": 1}]}),
                true,
                "defaulted list items",
            ),
            (
                json!({"l": [{"n": "x"}]}),
                json!({"l": [{"n": "x"}, {"n": "y"}]}),
                false,
                "list length differs",
            ),
            (
                json!({"l": [{"n": "x"}, {"n": "y"}]}),
                json!({"l": [{"n": "y"}, {"n": "x"}]}),
                false,
                "order matters",
            ),
            (
                json!({"m": {"k": "v"}}),
                json!({"m": {"k": "v", "o": "w"}}),
                true,
                "nested extra",
            ),
            (json!("1"), json!(1), false, "type differs"),
        ];
        for (desired, live, expected, what) in cases {
            assert_eq!(is_subset(&desired, &live), expected, "{what}");
        }
    }

    #[test]
    fn needs_apply_when_missing_or_different() {
        let desired = json!({"metadata": {"name": "x", "labels": {"a": "b"}}});
        assert!(needs_apply(&desired, None));
        let live = json!({"metadata": {"name": "x", "labels": {"a": "b"}, "uid": "u"}});
        assert!(!needs_apply(&desired, Some(&live)));
        let drifted = json!({"metadata": {"name": "x", "labels": {"a": "c"}}});
        assert!(needs_apply(&desired, Some(&drifted)));
    }
}
