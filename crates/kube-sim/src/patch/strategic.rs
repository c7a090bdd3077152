//! Strategic merge patch (`application/strategic-merge-patch+json`) as the API server applies it
//! to built-in kinds (apimachinery `strategicpatch`, server options: parallel deletion lists are
//! merged and `null`s without a counterpart are dropped).
//!
//! Directives: `$patch: replace|delete` on a map, `$patch: replace|delete` items in a merge-key
//! list, `$retainKeys`, `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`; `null`
//! deletes a key. Lists with a `patchMergeKey` merge per key, primitive lists with
//! `patchStrategy: merge` are unions, every other list is replaced.

use super::PatchError;
use super::list_types::{ListTypes, StrategicList};
use serde_json::{Map, Value};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to `original`, using `lists` for merge keys.
///
/// Returns [`PatchError::StrategicUnsupported`] when `lists` says the kind does not support it
/// (custom resources), [`PatchError::BadRequest`] for a malformed patch.
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    lists: &dyn ListTypes,
) -> Result<Value, PatchError> {
    if !lists.supports_strategic() {
        return Err(PatchError::StrategicUnsupported);
    }
    let Value::Object(patch) = patch else {
        return Err(PatchError::BadRequest(
            "strategic merge patch must be a JSON object".into(),
        ));
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let mut path = Vec::new();
    merge_map(original, patch.clone(), &mut path, lists).map(Value::Object)
}

fn bad(msg: impl Into<String>) -> PatchError {
    PatchError::BadRequest(msg.into())
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    path: &mut Vec<String>,
    lists: &dyn ListTypes,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.remove(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => strip_directives_map(patch, path, lists),
            Some("delete") => Ok(Map::new()),
            _ => Err(bad(format!(
                "Unknown patch type: {directive} in map: {}",
                Value::Object(patch)
            ))),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;

    // `$setElementOrder/<list>`: merge that list now and order it as the directive says.
    let order_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ORDER))
        .cloned()
        .collect();
    for key in order_keys {
        let order = patch.remove(&key).unwrap_or(Value::Null);
        let Value::Array(order) = order else {
            return Err(bad("invalid type for $setElementOrder list"));
        };
        let name = key[SET_ORDER.len()..].to_owned();
        let patch_list = patch.remove(&name);
        let original_list = original.remove(&name);
        path.push(name.clone());
        let strategy = lists.strategic(&names(path));
        let merged = match (original_list, patch_list) {
            (Some(o), None) => o,
            (None, Some(p)) => merge_value(None, p, path, lists)?,
            (Some(o), Some(p)) => merge_value(Some(o), p, path, lists)?,
            (None, None) => {
                path.pop();
                continue;
            }
        };
        path.pop();
        let merged = match (merged, strategy) {
            (Value::Array(items), Some(s)) => Value::Array(order_by(items, &order, &s)),
            (other, _) => other,
        };
        original.insert(name, merged);
    }

    for (key, value) in patch {
        if let Some(name) = key.strip_prefix(DELETE_PRIMITIVE) {
            let Value::Array(remove) = value else {
                return Err(bad("invalid type for $deleteFromPrimitiveList"));
            };
            if let Some(Value::Array(items)) = original.get_mut(name) {
                items.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if value.is_null() {
            original.remove(&key);
            continue;
        }
        path.push(key.clone());
        let merged = merge_value(original.remove(&key), value, path, lists)?;
        path.pop();
        original.insert(key, merged);
    }
    Ok(original)
}

/// Merges one patch value into the original value at `path` (which ends with the field name).
fn merge_value(
    original: Option<Value>,
    patch: Value,
    path: &mut Vec<String>,
    lists: &dyn ListTypes,
) -> Result<Value, PatchError> {
    match (original, patch) {
        (Some(Value::Object(o)), Value::Object(p)) => {
            merge_map(o, p, path, lists).map(Value::Object)
        }
        (None | Some(Value::Null), Value::Object(p)) => {
            merge_map(Map::new(), p, path, lists).map(Value::Object)
        }
        (Some(Value::Array(o)), Value::Array(p)) => merge_list(o, p, path, lists).map(Value::Array),
        (_, Value::Array(p)) => merge_list(Vec::new(), p, path, lists).map(Value::Array),
        (_, p) => Ok(p),
    }
}

/// Removes directives (and unmatched `null`s) from a value that replaces what was there.
fn strip_directives_map(
    patch: Map<String, Value>,
    path: &mut Vec<String>,
    lists: &dyn ListTypes,
) -> Result<Map<String, Value>, PatchError> {
    merge_map(Map::new(), patch, path, lists)
}

fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    path: &mut Vec<String>,
    lists: &dyn ListTypes,
) -> Result<Vec<Value>, PatchError> {
    if patch.iter().any(Value::is_array) || original.iter().any(Value::is_array) {
        return Err(PatchError::Unprocessable(
            "lists of lists are not supported".into(),
        ));
    }
    match lists.strategic(&names(path)) {
        None => {
            // Replace; still strip directives inside new map items.
            patch
                .into_iter()
                .map(|item| match item {
                    Value::Object(m) => merge_map(Map::new(), m, path, lists).map(Value::Object),
                    other => Ok(other),
                })
                .collect()
        }
        Some(StrategicList::MergePrimitive) => {
            let mut out = original.clone();
            for v in &patch {
                if v.is_object() {
                    return Err(bad("a primitive list cannot hold objects"));
                }
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(order_merged(out, &patch, &original, |a, b| a == b))
        }
        Some(StrategicList::MergeKey(key)) => merge_keyed(original, patch, &key, path, lists),
    }
}

fn merge_keyed(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    path: &mut Vec<String>,
    lists: &dyn ListTypes,
) -> Result<Vec<Value>, PatchError> {
    let mut items = Vec::new();
    let mut replace = false;
    for item in patch {
        let Value::Object(mut m) = item else {
            return Err(bad(format!(
                "list items of {} must be objects",
                path.join(".")
            )));
        };
        match m.get(DIRECTIVE).cloned() {
            None => items.push(m),
            Some(d) => match d.as_str() {
                Some("delete") => {
                    let Some(k) = m.get(key) else {
                        return Err(bad(format!(
                            "map: {} does not contain declared merge key: {key}",
                            Value::Object(m)
                        )));
                    };
                    let k = k.clone();
                    original.retain(|o| o.get(key) != Some(&k));
                }
                Some("replace") => {
                    replace = true;
                    m.remove(DIRECTIVE);
                }
                Some("merge") => {
                    return Err(bad("merging lists cannot yet be specified in the patch"));
                }
                _ => {
                    return Err(bad(format!(
                        "Unknown patch type: {d} in map: {}",
                        Value::Object(m)
                    )));
                }
            },
        }
    }
    if replace {
        let items: Vec<Value> = items
            .into_iter()
            .filter(|m| !m.is_empty())
            .map(|m| merge_map(Map::new(), m, path, lists).map(Value::Object))
            .collect::<Result<_, _>>()?;
        return Ok(items);
    }
    let patch_order: Vec<Value> = items.iter().cloned().map(Value::Object).collect();
    let original_order = original.clone();
    let mut merged = original;
    for m in items {
        let Some(k) = m.get(key).cloned() else {
            return Err(bad(format!(
                "map: {} does not contain declared merge key: {key}",
                Value::Object(m)
            )));
        };
        match merged.iter().position(|o| o.get(key) == Some(&k)) {
            Some(i) => {
                let Value::Object(o) = std::mem::take(&mut merged[i]) else {
                    unreachable!("found by key, so it is an object")
                };
                merged[i] = Value::Object(merge_map(o, m, path, lists)?);
            }
            None => merged.push(Value::Object(merge_map(Map::new(), m, path, lists)?)),
        }
    }
    let same = |a: &Value, b: &Value| a.get(key).is_some() && a.get(key) == b.get(key);
    Ok(order_merged(merged, &patch_order, &original_order, same))
}

/// Orders a merged list the way the API server does: items named in the patch keep the patch
/// order, items only on the server keep the server order, and both are interleaved by their
/// server positions.
fn order_merged(
    merged: Vec<Value>,
    patch: &[Value],
    server: &[Value],
    same: impl Fn(&Value, &Value) -> bool,
) -> Vec<Value> {
    let index_in = |list: &[Value], v: &Value| list.iter().position(|x| same(x, v));
    let (mut from_patch, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|v| index_in(patch, v).is_some());
    from_patch.sort_by_key(|v| index_in(patch, v));
    server_only.sort_by_key(|v| index_in(server, v).unwrap_or(usize::MAX));
    interleave(server_only, from_patch, |v| index_in(server, v))
}

/// Merges two ordered lists; an item of `left` goes first only when both items have a server
/// position and the left one is earlier.
fn interleave(
    left: Vec<Value>,
    right: Vec<Value>,
    server_index: impl Fn(&Value) -> Option<usize>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
            (Some(l), Some(r)) => {
                matches!((server_index(l), server_index(r)), (Some(li), Some(ri)) if li < ri)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// Orders a list by a `$setElementOrder` directive.
fn order_by(items: Vec<Value>, order: &[Value], strategy: &StrategicList) -> Vec<Value> {
    let same = |a: &Value, b: &Value| match strategy {
        StrategicList::MergePrimitive => a == b,
        StrategicList::MergeKey(k) => a.get(k).is_some() && a.get(k) == b.get(k),
    };
    let server: Vec<Value> = items.clone();
    order_merged(items, order, &server, same)
}

fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(bad("invalid patch format of retainKeys"));
    };
    let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
    for (k, v) in patch.iter() {
        if v.is_null() || k.starts_with(SET_ORDER) || k.starts_with(DELETE_PRIMITIVE) {
            continue;
        }
        if !keep.contains(&k.as_str()) {
            return Err(bad("invalid patch format of retainKeys"));
        }
    }
    original.retain(|k, _| keep.contains(&k.as_str()));
    Ok(())
}

fn names(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::list_types::{BuiltinListTypes, SchemaListTypes};
    use serde_json::json;

    fn sts() -> BuiltinListTypes {
        BuiltinListTypes::for_kind("apps/v1", "StatefulSet")
    }

    fn sts_with(containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
               "spec": {"template": {"spec": {"containers": containers}}}})
    }

    fn smp(original: &Value, patch: Value) -> Value {
        strategic_merge_patch(original, &patch, &sts()).unwrap()
    }

    #[test]
    fn containers_and_env_merge_by_name() {
        let live = sts_with(json!([
            {"name": "db", "image": "mssql:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "exporter", "image": "exp:1"}
        ]));
        let out = smp(
            &live,
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "db", "image": "mssql:2", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}
            ]}}}}),
        );
        assert_eq!(
            out,
            sts_with(json!([
                {"name": "db", "image": "mssql:2", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]},
                {"name": "exporter", "image": "exp:1"}
            ]))
        );
    }

    #[test]
    fn new_items_without_an_order_directive_go_first() {
        // apimachinery's mergeSortedSlice places patch items that the server does not know
        // before the server-only items (kubectl avoids this by sending $setElementOrder).
        let live = sts_with(json!([{"name": "a"}, {"name": "b"}]));
        let out = smp(
            &live,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}),
        );
        assert_eq!(
            out,
            sts_with(json!([{"name": "c"}, {"name": "a"}, {"name": "b"}]))
        );
    }

    #[test]
    fn directives_table() {
        let live = sts_with(json!([
            {"name": "db", "image": "mssql:1", "args": ["a", "b"], "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "exporter", "image": "exp:1"}
        ]));
        let containers = |c: Value| json!({"spec": {"template": {"spec": {"containers": c}}}});
        let cases = [
            // `$patch: delete` on an item removes it by merge key.
            (
                containers(json!([{"name": "exporter", "$patch": "delete"}])),
                json!([{"name": "db", "image": "mssql:1", "args": ["a", "b"], "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]),
            ),
            // `$patch: replace` in a list replaces the whole list.
            (
                containers(json!([{"name": "only", "image": "x"}, {"$patch": "replace"}])),
                json!([{"name": "only", "image": "x"}]),
            ),
            // Lists without merge key (args) are replaced; null deletes a field.
            (
                containers(json!([{"name": "db", "args": ["c"], "image": null}])),
                json!([{"name": "db", "args": ["c"], "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}, {"name": "exporter", "image": "exp:1"}]),
            ),
            // A `$patch: replace` item replaces the whole list with the other items (none here).
            (
                containers(json!([{"name": "db", "$patch": "replace", "image": "new"}])),
                json!([]),
            ),
            // `$patch: replace` on a map replaces that map; `$patch: delete` empties it.
            (
                containers(
                    json!([{"name": "db", "resources": {"$patch": "replace", "limits": {"cpu": "1"}}},
                               {"name": "exporter", "securityContext": {"$patch": "delete"}}]),
                ),
                json!([{"name": "db", "image": "mssql:1", "args": ["a", "b"], "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "resources": {"limits": {"cpu": "1"}}},
                    {"name": "exporter", "image": "exp:1", "securityContext": {}}]),
            ),
            // `$setElementOrder` reorders the list.
            (
                json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "exporter"}, {"name": "db"}]}}}}),
                json!([{"name": "exporter", "image": "exp:1"}, {"name": "db", "image": "mssql:1", "args": ["a", "b"], "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]),
            ),
            // `$retainKeys` clears fields not listed.
            (
                containers(
                    json!([{"name": "db", "$retainKeys": ["name", "image"], "image": "mssql:3"}]),
                ),
                json!([{"name": "db", "image": "mssql:3"}, {"name": "exporter", "image": "exp:1"}]),
            ),
        ];
        for (patch, expected) in cases {
            assert_eq!(
                smp(&live, patch.clone()),
                sts_with(expected),
                "patch {patch}"
            );
        }
    }

    #[test]
    fn finalizers_merge_as_a_set_and_delete_from_primitive_list() {
        let live = json!({"metadata": {"name": "x", "finalizers": ["a", "b"]}});
        let out = smp(&live, json!({"metadata": {"finalizers": ["c", "a"]}}));
        // Patch items in patch order first, server-only items after (the API server's order).
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let out = smp(
            &live,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn service_ports_merge_by_port_and_unknown_lists_replace() {
        let svc = BuiltinListTypes::for_kind("v1", "Service");
        let live = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}], "clusterIPs": ["10.0.0.1"]}});
        let out = strategic_merge_patch(
            &live,
            &json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}),
            &svc,
        )
        .unwrap();
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "name": "http"}, {"port": 443, "name": "https", "targetPort": 8443}])
        );
        let tol = json!({"spec": {"tolerations": [{"key": "a"}]}});
        let pod = BuiltinListTypes::for_kind("v1", "Pod");
        let out = strategic_merge_patch(
            &tol,
            &json!({"spec": {"tolerations": [{"key": "b"}]}}),
            &pod,
        )
        .unwrap();
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "b"}]));
    }

    #[test]
    fn errors() {
        let crd = SchemaListTypes::new(json!({"type": "object"}));
        assert_eq!(
            strategic_merge_patch(&json!({}), &json!({}), &crd),
            Err(PatchError::StrategicUnsupported)
        );
        let live = sts_with(json!([{"name": "db"}]));
        let missing_key = smp_err(
            &live,
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
        );
        assert!(
            missing_key.to_string().contains("merge key"),
            "{missing_key}"
        );
        let bad_directive = smp_err(&live, json!({"spec": {"$patch": "bogus"}}));
        assert_eq!(bad_directive.http_status(), 400);
        assert_eq!(smp_err(&live, json!([1])).http_status(), 400);
    }

    #[test]
    fn kubectl_client_side_apply_patch_on_a_deployment() {
        let deploy = BuiltinListTypes::for_kind("apps/v1", "Deployment");
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "app", "image": "nginx:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                     "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                    {"name": "sidecar", "image": "busybox"}]}}}});
        // What kubectl apply sends after the manifest switched strategy, changed the image, dropped
        // env B, added env C before A and removed the sidecar.
        let patch = json!({"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                "template": {"spec": {"$setElementOrder/containers": [{"name": "app"}],
                    "containers": [{"name": "app", "image": "nginx:2",
                        "$setElementOrder/env": [{"name": "C"}, {"name": "A"}],
                        "env": [{"name": "C", "value": "3"}, {"name": "B", "$patch": "delete"}]},
                        {"name": "sidecar", "$patch": "delete"}]}}}});
        let out = strategic_merge_patch(&live, &patch, &deploy).unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "{}"
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([
            {"name": "app", "image": "nginx:2", "env": [{"name": "C", "value": "3"}, {"name": "A", "value": "1"}],
             "ports": [{"containerPort": 80, "protocol": "TCP"}]}])
        );
        // kubectl set image
        let set_image = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:3"}]}}}});
        let out = strategic_merge_patch(&out, &set_image, &deploy).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:3"
        );
        assert_eq!(out["spec"]["replicas"], 1);
    }

    fn smp_err(original: &Value, patch: Value) -> PatchError {
        strategic_merge_patch(original, &patch, &sts()).unwrap_err()
    }
}
