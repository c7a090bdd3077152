//! Label and field selectors, parsed from query strings and from `metav1.LabelSelector` objects.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::meta;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value`, `key==value`, `key in (a,b)`.
    In(String, BTreeSet<String>),
    /// `key!=value`, `key notin (a,b)`: also matches objects without the key.
    NotIn(String, BTreeSet<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
    /// `key > n` / `key < n` (numeric comparison, the key must exist).
    Gt(String, i64),
    /// `key < n`.
    Lt(String, i64),
}

/// A parsed label selector: all requirements must hold. Empty selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn value_set(list: &str) -> Result<BTreeSet<String>, String> {
    let inner = list
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised value list, got {list:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect())
}

fn check_key(key: &str) -> Result<String, String> {
    let key = key.trim();
    let valid = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if valid {
        Ok(key.to_owned())
    } else {
        Err(format!("invalid label key {key:?}"))
    }
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter syntax.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let words: Vec<&str> = part.split_whitespace().collect();
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement::DoesNotExist(check_key(key)?)
            } else if words.len() >= 2 && (words[1] == "in" || words[1] == "notin") {
                let after_key = part.trim_start()[words[0].len()..].trim_start();
                let rest = &after_key[words[1].len()..];
                let key = check_key(words[0])?;
                let set = value_set(rest)?;
                if words[1] == "in" {
                    Requirement::In(key, set)
                } else {
                    Requirement::NotIn(key, set)
                }
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotIn(check_key(k)?, BTreeSet::from([v.trim().to_owned()]))
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::In(check_key(k)?, BTreeSet::from([v.trim().to_owned()]))
            } else if let Some((k, v)) = part.split_once('>') {
                Requirement::Gt(
                    check_key(k)?,
                    v.trim()
                        .parse()
                        .map_err(|_| format!("invalid number in {part:?}"))?,
                )
            } else if let Some((k, v)) = part.split_once('<') {
                Requirement::Lt(
                    check_key(k)?,
                    v.trim()
                        .parse()
                        .map_err(|_| format!("invalid number in {part:?}"))?,
                )
            } else {
                Requirement::Exists(check_key(part)?)
            };
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    /// Converts a `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`).
    /// A missing selector (`null`) selects nothing, an empty one everything, as for PDBs.
    pub fn from_object(sel: &Value) -> Option<Self> {
        let obj = sel.as_object()?;
        let mut reqs = Vec::new();
        if let Some(labels) = obj.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                reqs.push(Requirement::In(
                    k.clone(),
                    BTreeSet::from([meta::field_string(v)]),
                ));
            }
        }
        for expr in obj
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = expr
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let values: BTreeSet<String> = expr
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(meta::field_string)
                .collect();
            reqs.push(
                match expr
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                {
                    "In" => Requirement::In(key, values),
                    "NotIn" => Requirement::NotIn(key, values),
                    "Exists" => Requirement::Exists(key),
                    "DoesNotExist" => Requirement::DoesNotExist(key),
                    _ => return None,
                },
            );
        }
        Some(LabelSelector(reqs))
    }

    /// Whether the labels of `obj` satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let labels = meta::metadata(obj).get("labels").and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            Requirement::In(k, set) => get(k).is_some_and(|v| set.contains(v)),
            Requirement::NotIn(k, set) => get(k).is_none_or(|v| !set.contains(v)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
            Requirement::Gt(k, n) => get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            Requirement::Lt(k, n) => get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        })
    }
}

/// One term of a field selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTerm {
    /// Dotted field path, e.g. `metadata.name`, `spec.nodeName`, `type`.
    pub path: String,
    /// Value to compare with.
    pub value: String,
    /// `!=` rather than `=`.
    pub negated: bool,
}

/// A parsed field selector: all terms must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<FieldTerm>);

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter syntax (`a=b`, `a==b`, `a!=b`, comma-separated).
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in split_top_level(s) {
            let (path, value, negated) = if let Some((k, v)) = part.split_once("!=") {
                (k, v, true)
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (k, v, false)
            } else {
                return Err(format!(
                    "invalid field selector term {part:?}: expected key=value or key!=value"
                ));
            };
            terms.push(FieldTerm {
                path: path.trim().to_owned(),
                value: v_trim(value),
                negated,
            });
        }
        Ok(FieldSelector(terms))
    }

    /// The value a `metadata.name=X` term pins, if any (lets lists skip a scan).
    pub fn exact_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|t| t.path == "metadata.name" && !t.negated)
            .map(|t| t.value.as_str())
    }

    /// Whether `obj` satisfies every term. Missing fields compare as the empty string.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|t| {
            let actual = meta::lookup(obj, &t.path)
                .map(meta::field_string)
                .unwrap_or_default();
            (actual == t.value) != t.negated
        })
    }
}

fn v_trim(v: &str) -> String {
    v.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "n", "namespace": "ns", "labels": labels}, "type": "helm.sh/release.v1"})
    }

    #[test]
    fn label_selector_operators() {
        let o = obj(json!({"app": "web", "tier": "front", "rank": "5"}));
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app in (web, db)", true),
            ("tier in (front)", true),
            ("app notin (web)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app=web,tier in (front),!missing", true),
            ("app=web,tier=back", false),
            ("rank>3", true),
            ("rank<3", false),
        ];
        for (sel, want) in cases {
            let parsed = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(parsed.matches(&o), want, "{sel}");
        }
    }

    #[test]
    fn label_selector_rejects_garbage() {
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("a b=c").is_err());
    }

    #[test]
    fn label_selector_objects() {
        let o = obj(json!({"app": "web"}));
        let sel = |v: Value| LabelSelector::from_object(&v).map(|s| s.matches(&o));
        assert_eq!(sel(json!({})), Some(true));
        assert_eq!(sel(json!({"matchLabels": {"app": "web"}})), Some(true));
        assert_eq!(
            sel(
                json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]})
            ),
            Some(false)
        );
        assert_eq!(sel(Value::Null), None);
    }

    #[test]
    fn field_selectors() {
        let o = obj(json!({}));
        let cases = [
            ("metadata.name=n", true),
            ("metadata.name==n", true),
            ("metadata.name!=n", false),
            ("metadata.namespace=ns,metadata.name=n", true),
            ("type=helm.sh/release.v1", true),
            ("status.phase=Running", false),
            ("status.phase!=Running", true),
        ];
        for (sel, want) in cases {
            assert_eq!(
                FieldSelector::parse(sel).unwrap().matches(&o),
                want,
                "{sel}"
            );
        }
        assert_eq!(
            FieldSelector::parse("metadata.name=x")
                .unwrap()
                .exact_name(),
            Some("x")
        );
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
