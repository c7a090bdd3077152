//! Structural pruning and defaulting.

use super::FieldPath;
use super::node;
use serde_json::{Map, Value};

/// Removes fields the schema does not declare, unless `x-kubernetes-preserve-unknown-fields`
/// keeps them. `apiVersion`, `kind` and `metadata` are kept at the root and in embedded
/// resources (`x-kubernetes-embedded-resource`). Returns the removed paths (`spec.foo`), in the
/// order found.
pub fn prune(schema: &Value, object: &mut Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune_at(schema, object, &FieldPath::default(), true, &mut pruned);
    pruned
}

fn prune_at(s: &Value, v: &mut Value, path: &FieldPath, keep_meta: bool, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            let props = node::properties(s);
            let additional = node::additional(s);
            let preserve = node::preserves_unknown(s);
            let keep_meta = keep_meta || node::embedded(s);
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if keep_meta && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    // ObjectMeta and the type fields are never pruned by the schema.
                    continue;
                }
                let child_schema = props.and_then(|p| p.get(&key)).or(additional);
                match (child_schema, map.get_mut(&key)) {
                    (Some(cs), Some(child)) => {
                        let child_path = if props.is_some_and(|p| p.contains_key(&key)) {
                            path.child(&key)
                        } else {
                            path.key(&key)
                        };
                        prune_at(cs, child, &child_path, false, out);
                    }
                    (None, _) if preserve => {}
                    (None, _) => {
                        map.remove(&key);
                        out.push(path.child(&key).as_str().to_owned());
                    }
                    (Some(_), None) => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = node::items(s) {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_at(is, item, &path.index(i), false, out);
                }
            }
        }
        _ => {}
    }
}

/// Applies `default`s: a missing property (or a `null` one that is not `nullable`) with a
/// default gets a copy of it, recursively, inside objects and array items that exist.
/// `null`s of non-nullable fields without a default are dropped, as the API server does.
pub fn apply_defaults(schema: &Value, object: &mut Value) {
    default_at(schema, object, true);
}

fn default_at(s: &Value, v: &mut Value, root: bool) {
    match v {
        Value::Object(map) => {
            if let Some(props) = node::properties(s) {
                for (key, ps) in props {
                    if root && key == "metadata" {
                        continue;
                    }
                    let missing = match map.get(key) {
                        None => true,
                        Some(Value::Null) => !node::nullable(ps),
                        Some(_) => false,
                    };
                    if missing {
                        match ps.get("default") {
                            Some(d) => {
                                map.insert(key.clone(), d.clone());
                            }
                            None => {
                                if map.get(key).is_some_and(Value::is_null) {
                                    map.remove(key);
                                }
                            }
                        }
                    }
                }
            }
            let props = node::properties(s);
            let additional = node::additional(s);
            for (key, child) in map.iter_mut() {
                if root && key == "metadata" {
                    continue;
                }
                if let Some(cs) = props.and_then(|p| p.get(key)).or(additional) {
                    default_at(cs, child, false);
                }
            }
            if let Some(a) = additional {
                fill_null_map_values(map, a);
            }
        }
        Value::Array(items) => {
            if let Some(is) = node::items(s) {
                for item in items.iter_mut() {
                    if item.is_null()
                        && !node::nullable(is)
                        && let Some(d) = is.get("default")
                    {
                        *item = d.clone();
                    }
                    default_at(is, item, false);
                }
            }
        }
        _ => {}
    }
}

/// `null` values of a map (`additionalProperties`) that is not nullable take the default.
fn fill_null_map_values(map: &mut Map<String, Value>, additional: &Value) {
    if node::nullable(additional) {
        return;
    }
    if let Some(d) = additional.get("default") {
        for v in map.values_mut() {
            if v.is_null() {
                *v = d.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer", "default": 1},
                "mode": {"type": "string", "default": "Standalone"},
                "nothing": {"type": "string"},
                "storage": {"type": "object", "properties": {
                    "class": {"type": "string", "default": "standard"},
                    "size": {"type": "string"}}},
                "items": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "port": {"type": "integer", "default": 80}}}},
                "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                    "x-kubernetes-preserve-unknown-fields": true},
                "embedded": {"type": "object", "x-kubernetes-embedded-resource": true,
                    "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}}},
                "withDefaultObject": {"type": "object", "default": {},
                    "properties": {"inner": {"type": "string", "default": "d"}}}
            }},
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
        }})
    }

    #[test]
    fn prune_removes_unknown_fields_only() {
        let mut obj = json!({
            "apiVersion": "kubedb.com/v1", "kind": "MSSQLServer",
            "metadata": {"name": "a", "labels": {"x": "y"}, "unknownMeta": 1},
            "spec": {"replicas": 3, "bogus": true,
                "items": [{"name": "a", "extra": 1}],
                "config": {"anything": {"deep": 1}, "known": {"a": "x", "b": "pruned"}},
                "labels": {"free": "form"},
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"any": 1}},
                "embedded": {"apiVersion": "v1", "kind": "X", "metadata": {"name": "e"}, "spec": {"x": "1", "y": "2"}, "other": 1}},
            "status": {"phase": "Ready", "junk": 1},
            "topLevelJunk": 1
        });
        let pruned = prune(&schema(), &mut obj);
        let mut sorted = pruned.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "spec.bogus",
                "spec.config.known.b",
                "spec.embedded.other",
                "spec.embedded.spec.y",
                "spec.items[0].extra",
                "status.junk",
                "topLevelJunk"
            ]
        );
        assert_eq!(
            obj,
            json!({
                "apiVersion": "kubedb.com/v1", "kind": "MSSQLServer",
                "metadata": {"name": "a", "labels": {"x": "y"}, "unknownMeta": 1},
                "spec": {"replicas": 3, "items": [{"name": "a"}],
                    "config": {"anything": {"deep": 1}, "known": {"a": "x"}},
                    "labels": {"free": "form"},
                    "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"any": 1}},
                    "embedded": {"apiVersion": "v1", "kind": "X", "metadata": {"name": "e"}, "spec": {"x": "1"}}},
                "status": {"phase": "Ready"}
            })
        );
    }

    #[test]
    fn defaults_apply_where_parents_exist() {
        let cases = [
            // No spec: nothing defaulted inside it.
            (
                json!({"metadata": {"name": "a"}}),
                json!({"metadata": {"name": "a"}}),
            ),
            // Empty spec: scalar defaults and object defaults (with their own nested defaults).
            (
                json!({"spec": {}}),
                json!({"spec": {"replicas": 1, "mode": "Standalone", "withDefaultObject": {"inner": "d"}}}),
            ),
            // Given values win; nested object defaults only when the object exists; array items.
            (
                json!({"spec": {"replicas": 3, "storage": {}, "items": [{"name": "a"}, {"name": "b", "port": 81}], "withDefaultObject": {"inner": "x"}}}),
                json!({"spec": {"replicas": 3, "mode": "Standalone", "storage": {"class": "standard"},
                    "items": [{"name": "a", "port": 80}, {"name": "b", "port": 81}], "withDefaultObject": {"inner": "x"}}}),
            ),
            // null on a non-nullable field: defaulted if there is a default, dropped otherwise.
            (
                json!({"spec": {"replicas": null, "nothing": null, "withDefaultObject": {}}}),
                json!({"spec": {"replicas": 1, "mode": "Standalone", "withDefaultObject": {"inner": "d"}}}),
            ),
        ];
        for (mut input, expected) in cases {
            apply_defaults(&schema(), &mut input);
            assert_eq!(input, expected);
        }
    }
}
