//! Small pure helpers shared by the simulated controllers.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

/// Shell-style glob: `*` matches any run of characters (including `/`), `?` exactly one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ti = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// 32-bit FNV-1a, the hash Kubernetes uses for revision and pod-template hashes.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Encodes a number with the consonant-and-digit alphabet Kubernetes uses for generated names
/// (no vowels, so no words), as `rand.SafeEncodeString` does.
pub fn safe_encode(mut n: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = Vec::new();
    loop {
        out.push(ALPHABET[(n % ALPHABET.len() as u64) as usize]);
        n /= ALPHABET.len() as u64;
        if n == 0 {
            break;
        }
    }
    String::from_utf8(out).expect("alphabet is ASCII")
}

/// Stable hash of a serialisable value (its canonical JSON: serde_json maps are sorted).
pub fn stable_hash<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).expect("Kubernetes objects serialise to JSON");
    safe_encode(u64::from(fnv32a(&json)))
}

/// Whether labels satisfy a label selector. An empty selector matches everything; a missing one
/// (`None`) matches nothing, as for a Service or PDB without selector.
pub fn selector_matches(
    selector: Option<&LabelSelector>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let Some(selector) = selector else {
        return false;
    };
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|req| {
        let values = req.values.as_deref().unwrap_or_default();
        let value = labels.get(&req.key);
        match req.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// Whether a map of labels contains every pair of a plain (Service-style) selector; an empty or
/// missing selector matches nothing, as Kubernetes does for Services.
pub fn map_selector_matches(
    selector: Option<&BTreeMap<String, String>>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    match (selector, labels) {
        (Some(selector), Some(labels)) if !selector.is_empty() => {
            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        }
        _ => false,
    }
}

/// The controller owner reference of an object, if any.
pub fn controller_of(owners: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    owners?.iter().find(|o| o.controller == Some(true))
}

/// An owner reference that marks `owner` as the controller of a dependent.
pub fn controller_ref(api_version: &str, kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A `metav1.Time` at whole-second precision, as the API server serialises it.
pub fn time_at(ts: Timestamp) -> Time {
    Time(Timestamp::from_second(ts.as_second()).unwrap_or(ts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn globs() {
        let cases = [
            ("nginx", "nginx", true),
            ("nginx", "nginx:1", false),
            ("nginx:*", "nginx:1.25", true),
            ("*/bad:*", "ghcr.io/x/bad:1", true),
            ("*bad*", "registry/badimage", true),
            ("img:?", "img:1", true),
            ("img:?", "img:12", false),
            ("*", "", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(glob_match(pattern, text), expected, "{pattern} vs {text}");
        }
    }

    #[test]
    fn hashes_are_stable_and_distinct() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        let a = stable_hash(&serde_json::json!({"image": "a"}));
        let b = stable_hash(&serde_json::json!({"image": "b"}));
        assert_ne!(a, b);
        assert_eq!(a, stable_hash(&serde_json::json!({"image": "a"})));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "db")])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into(), "b".into()]),
                },
                LabelSelectorRequirement {
                    key: "skip".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        let cases = [
            (labels(&[("app", "db"), ("tier", "a")]), true),
            (labels(&[("app", "db"), ("tier", "c")]), false),
            (labels(&[("app", "db")]), false),
            (labels(&[("app", "db"), ("tier", "b"), ("skip", "")]), false),
            (labels(&[("app", "web"), ("tier", "a")]), false),
        ];
        for (l, expected) in cases {
            assert_eq!(selector_matches(Some(&sel), Some(&l)), expected, "{l:?}");
        }
        assert!(selector_matches(
            Some(&LabelSelector::default()),
            Some(&labels(&[("x", "y")]))
        ));
        assert!(!selector_matches(None, Some(&labels(&[("x", "y")]))));
        assert!(map_selector_matches(
            Some(&labels(&[("app", "db")])),
            Some(&labels(&[("app", "db"), ("x", "y")]))
        ));
        assert!(!map_selector_matches(
            Some(&BTreeMap::new()),
            Some(&labels(&[("app", "db")]))
        ));
    }
}
