//! Sets of field paths and their `FieldsV1` encoding (as in `metadata.managedFields`).
//!
//! A path element is a field name (`f:name`), a list-map item key (`k:{"type":"Ready"}`), a set
//! value (`v:"a"`) or a list index (`i:0`); `.` marks the node itself as a member when it also
//! has children.

use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of an object: `f:<name>`.
    Field(Arc<str>),
    /// A list-map item by its key fields, as canonical JSON with sorted keys: `k:{...}`.
    Key(Arc<str>),
    /// A set item by its value, as JSON: `v:<json>`.
    Value(Arc<str>),
    /// A list item by position: `i:<n>`.
    Index(usize),
}

impl PathElement {
    /// A list-map key element from key fields (sorted by name, as FieldsV1 writes them).
    pub fn key(fields: &[(String, Value)]) -> Self {
        let mut sorted: Vec<&(String, Value)> = fields.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let body: Vec<String> = sorted
            .iter()
            .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v)))
            .collect();
        PathElement::Key(format!("{{{}}}", body.join(",")).into())
    }

    /// A set element from its value.
    pub fn value(v: &Value) -> Self {
        PathElement::Value(canonical(v).into())
    }

    /// The FieldsV1 key of this element.
    pub fn to_fields_v1(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(k) => format!("k:{k}"),
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn from_fields_v1(s: &str) -> Option<Self> {
        let (kind, rest) = s.split_once(':')?;
        Some(match kind {
            "f" => PathElement::Field(rest.into()),
            "k" => {
                let Value::Object(m) = serde_json::from_str(rest).ok()? else {
                    return None;
                };
                let fields: Vec<(String, Value)> = m.into_iter().collect();
                PathElement::key(&fields)
            }
            "v" => PathElement::value(&serde_json::from_str(rest).ok()?),
            "i" => PathElement::Index(rest.parse().ok()?),
            _ => return None,
        })
    }
}

/// JSON text with object keys sorted, so equal values encode equally.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let body: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&m[*k])))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// Displays a path the way conflict messages do: `.spec.containers[name="app"].image`.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(k) => {
                let Ok(Value::Object(m)) = serde_json::from_str::<Value>(k) else {
                    return write!(f, "[{k}]");
                };
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A field path from the object root.
pub type Path = Vec<PathElement>;

/// Formats a path for messages (`.spec.replicas`).
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A set of field paths. Paths are shared (`Arc`), so copying sets between managers is cheap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    paths: BTreeSet<Arc<[PathElement]>>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a path.
    pub fn insert(&mut self, path: Path) {
        self.paths.insert(path.into());
    }

    /// Whether the path is a member.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        self.paths.contains(path)
    }

    /// Whether the set has no members.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The number of member paths.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Members in order.
    pub fn iter(&self) -> impl Iterator<Item = &[PathElement]> {
        self.paths.iter().map(|p| &**p)
    }

    /// Members of either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            paths: self.paths.union(&other.paths).cloned().collect(),
        }
    }

    /// Members of `self` not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            paths: self.paths.difference(&other.paths).cloned().collect(),
        }
    }

    /// Members of both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            paths: self.paths.intersection(&other.paths).cloned().collect(),
        }
    }

    /// Keeps the members `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&[PathElement]) -> bool) {
        self.paths.retain(|p| keep(p));
    }

    /// Removes every member of `other`.
    pub fn remove_all(&mut self, other: &FieldSet) {
        if !other.is_empty() {
            self.paths.retain(|p| !other.paths.contains(p));
        }
    }

    /// Adds every member of `other`.
    pub fn add_all(&mut self, other: &FieldSet) {
        self.paths.extend(other.paths.iter().cloned());
    }

    /// Encodes as a FieldsV1 object.
    pub fn to_fields_v1(&self) -> Value {
        let mut root = Map::new();
        for path in &self.paths {
            let mut node = &mut root;
            for (i, el) in path.iter().enumerate() {
                let entry = node
                    .entry(el.to_fields_v1())
                    .or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(child) = entry else {
                    unreachable!("only objects are inserted")
                };
                if i + 1 == path.len() {
                    // A member; mark with "." only once it also has children (done below).
                    child.entry(".").or_insert(Value::Bool(true));
                }
                node = child;
            }
        }
        finish(&mut root);
        Value::Object(root)
    }

    /// Decodes a FieldsV1 object; unknown element prefixes are skipped.
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut set = FieldSet::new();
        let mut path = Vec::new();
        if let Value::Object(m) = v {
            decode(m, &mut path, &mut set);
        }
        set
    }
}

/// Turns the temporary member markers into FieldsV1 form: a member without children is `{}`, a
/// member with children has `".": {}`.
fn finish(node: &mut Map<String, Value>) {
    for (key, child) in node.iter_mut() {
        if key == "." {
            *child = Value::Object(Map::new());
            continue;
        }
        if let Value::Object(m) = child {
            if m.len() == 1 && m.contains_key(".") {
                m.clear();
            } else {
                finish(m);
            }
        }
    }
}

fn decode(m: &Map<String, Value>, path: &mut Path, set: &mut FieldSet) {
    for (key, child) in m {
        if key == "." {
            if !path.is_empty() {
                set.insert(path.clone());
            }
            continue;
        }
        let Some(el) = PathElement::from_fields_v1(key) else {
            continue;
        };
        path.push(el);
        match child {
            Value::Object(c) if !c.is_empty() => decode(c, path, set),
            _ => set.insert(path.clone()),
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    #[test]
    fn fields_v1_round_trip() {
        let v1 = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:finalizers": {"v:\"a\"": {}}, "f:replicas": {}},
            "f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}, "f:type": {}}}}
        });
        let set = FieldSet::from_fields_v1(&v1);
        assert!(set.contains(&[f("metadata"), f("labels")]));
        assert!(set.contains(&[f("metadata"), f("labels"), f("app")]));
        assert!(!set.contains(&[f("metadata")]));
        assert!(set.contains(&[f("spec"), f("finalizers"), PathElement::value(&json!("a"))]));
        let ready = PathElement::key(&[("type".into(), json!("Ready"))]);
        assert!(set.contains(&[f("status"), f("conditions"), ready.clone()]));
        assert!(set.contains(&[f("status"), f("conditions"), ready, f("status")]));
        assert_eq!(set.len(), 7);
        assert_eq!(set.to_fields_v1(), v1);
    }

    #[test]
    fn key_elements_are_sorted_and_displayed_like_the_api_server() {
        let el = PathElement::key(&[
            ("protocol".into(), json!("TCP")),
            ("containerPort".into(), json!(80)),
        ]);
        assert_eq!(
            el.to_fields_v1(),
            r#"k:{"containerPort":80,"protocol":"TCP"}"#
        );
        let path = vec![f("spec"), f("ports"), el, f("name")];
        assert_eq!(
            path_string(&path),
            r#".spec.ports[containerPort=80,protocol="TCP"].name"#
        );
        assert_eq!(
            path_string(&[f("a"), PathElement::value(&json!("x"))]),
            r#".a[="x"]"#
        );
    }
}
