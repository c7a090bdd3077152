//! Small pure helpers shared by the simulated controllers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

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

/// The objects of one controller pass indexed by namespace and by label pair, so that matching a
/// selector looks only at the objects carrying one of its labels instead of at every object in
/// the cluster (which made passes quadratic in the number of objects).
///
/// Buckets are keyed by a hash of (namespace, key, value); a collision only adds candidates,
/// because [`LabelIndex::select`] and [`LabelIndex::select_map`] check the namespace and the whole
/// selector on each one.
pub struct LabelIndex<'a, K> {
    by_namespace: HashMap<u64, Vec<&'a Arc<K>>>,
    by_label: HashMap<u64, Vec<&'a Arc<K>>>,
}

fn bucket(parts: &[&str]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut hasher);
    hasher.finish()
}

impl<'a, K: kube::Resource> LabelIndex<'a, K> {
    /// Indexes `objects` (usually a store's `state()`).
    pub fn new(objects: &'a [Arc<K>]) -> Self {
        let mut by_namespace: HashMap<u64, Vec<&Arc<K>>> = HashMap::new();
        let mut by_label: HashMap<u64, Vec<&Arc<K>>> = HashMap::new();
        for object in objects {
            let meta = object.meta();
            let ns = meta.namespace.as_deref().unwrap_or_default();
            by_namespace.entry(bucket(&[ns])).or_default().push(object);
            for (key, value) in meta.labels.iter().flatten() {
                by_label
                    .entry(bucket(&[ns, key, value]))
                    .or_default()
                    .push(object);
            }
        }
        Self {
            by_namespace,
            by_label,
        }
    }

    /// The objects that may match, in `namespace`, a selector whose equality requirements are
    /// `required`: the bucket of the rarest required pair, or the namespace's bucket when nothing
    /// is required. A superset: callers check the namespace and the whole selector.
    fn candidates<'s>(
        &self,
        namespace: &str,
        required: impl IntoIterator<Item = (&'s String, &'s String)>,
    ) -> &[&'a Arc<K>] {
        let mut best: Option<&[&'a Arc<K>]> = None;
        for (key, value) in required {
            let list = self
                .by_label
                .get(&bucket(&[namespace, key, value]))
                .map(Vec::as_slice)
                .unwrap_or_default();
            if best.is_none_or(|b| list.len() < b.len()) {
                best = Some(list);
            }
        }
        best.unwrap_or_else(|| {
            self.by_namespace
                .get(&bucket(&[namespace]))
                .map(Vec::as_slice)
                .unwrap_or_default()
        })
    }

    /// The objects of `namespace` that `selector` selects (`None` selects nothing).
    pub fn select(&self, namespace: &str, selector: Option<&LabelSelector>) -> Vec<&'a Arc<K>> {
        let Some(sel) = selector else {
            return Vec::new();
        };
        self.candidates(namespace, sel.match_labels.iter().flatten())
            .iter()
            .copied()
            .filter(|o| o.meta().namespace.as_deref().unwrap_or_default() == namespace)
            .filter(|o| selector_matches(Some(sel), o.meta().labels.as_ref()))
            .collect()
    }

    /// The objects of `namespace` that a Service-style selector selects (empty or `None`
    /// selects nothing).
    pub fn select_map(
        &self,
        namespace: &str,
        selector: Option<&BTreeMap<String, String>>,
    ) -> Vec<&'a Arc<K>> {
        let Some(sel) = selector.filter(|s| !s.is_empty()) else {
            return Vec::new();
        };
        self.candidates(namespace, sel.iter())
            .iter()
            .copied()
            .filter(|o| o.meta().namespace.as_deref().unwrap_or_default() == namespace)
            .filter(|o| map_selector_matches(Some(sel), o.meta().labels.as_ref()))
            .collect()
    }
}

/// `uid:resourceVersion` of an object: identifies one version of one object (a recreated
/// object of the same name has another uid).
pub fn uid_and_version<K: kube::Resource>(object: &K) -> String {
    let meta = object.meta();
    format!(
        "{}:{}",
        meta.uid.as_deref().unwrap_or_default(),
        meta.resource_version.as_deref().unwrap_or_default()
    )
}

/// A fingerprint of what a controller's decision about `object` depends on: its resourceVersion
/// and one entry per dependency (e.g. [`uid_and_version`] of each pod), in any order. Controllers
/// remember it per object and skip objects whose fingerprint has not changed.
pub fn inputs_fingerprint<K: kube::Resource>(
    object: &K,
    dependencies: impl IntoIterator<Item = String>,
) -> String {
    let mut parts: Vec<String> = dependencies.into_iter().collect();
    parts.sort_unstable();
    format!(
        "{}|{}",
        object
            .meta()
            .resource_version
            .as_deref()
            .unwrap_or_default(),
        parts.join(",")
    )
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

    fn pod(ns: &str, name: &str, l: &[(&str, &str)]) -> Arc<k8s_openapi::api::core::v1::Pod> {
        Arc::new(k8s_openapi::api::core::v1::Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                labels: Some(labels(l)),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    #[test]
    fn label_index_selects_what_a_full_scan_selects() {
        let pods = vec![
            pod(
                "a",
                "db-0",
                &[("app", "db"), ("instance", "one"), ("role", "primary")],
            ),
            pod("a", "db-1", &[("app", "db"), ("instance", "one")]),
            pod("a", "other-0", &[("app", "db"), ("instance", "two")]),
            pod("b", "db-0", &[("app", "db"), ("instance", "one")]),
            pod("a", "bare", &[]),
        ];
        let index = LabelIndex::new(&pods);
        let selectors = [
            LabelSelector {
                match_labels: Some(labels(&[("app", "db"), ("instance", "one")])),
                ..Default::default()
            },
            LabelSelector {
                match_labels: Some(labels(&[("instance", "one")])),
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "role".into(),
                    operator: "Exists".into(),
                    values: None,
                }]),
            },
            LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "instance".into(),
                    operator: "NotIn".into(),
                    values: Some(vec!["one".into()]),
                }]),
                ..Default::default()
            },
            LabelSelector::default(),
            LabelSelector {
                match_labels: Some(labels(&[("instance", "none")])),
                ..Default::default()
            },
        ];
        for selector in &selectors {
            for ns in ["a", "b", "c"] {
                let scan: Vec<String> = pods
                    .iter()
                    .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
                    .filter(|p| selector_matches(Some(selector), p.metadata.labels.as_ref()))
                    .map(|p| p.metadata.name.clone().unwrap())
                    .collect();
                let indexed: Vec<String> = index
                    .select(ns, Some(selector))
                    .iter()
                    .map(|p| p.metadata.name.clone().unwrap())
                    .collect();
                assert_eq!(indexed, scan, "{ns} {selector:?}");
            }
        }
        assert!(index.select("a", None).is_empty());
        let map = labels(&[("instance", "one")]);
        let names: Vec<_> = index
            .select_map("a", Some(&map))
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["db-0", "db-1"]);
        assert!(index.select_map("a", Some(&BTreeMap::new())).is_empty());
    }

    #[test]
    fn fingerprints_ignore_order_and_see_new_versions_and_new_objects() {
        let mut p1 = pod("a", "db-0", &[]);
        Arc::make_mut(&mut p1).metadata.uid = Some("u1".into());
        Arc::make_mut(&mut p1).metadata.resource_version = Some("5".into());
        let mut p2 = pod("a", "db-1", &[]);
        Arc::make_mut(&mut p2).metadata.uid = Some("u2".into());
        Arc::make_mut(&mut p2).metadata.resource_version = Some("7".into());
        let owner = pod("a", "owner", &[]);
        let key = |pods: &[&Arc<k8s_openapi::api::core::v1::Pod>]| {
            inputs_fingerprint(
                owner.as_ref(),
                pods.iter().map(|p| uid_and_version(p.as_ref())),
            )
        };
        assert_eq!(key(&[&p1, &p2]), key(&[&p2, &p1]));
        let mut newer = p2.clone();
        Arc::make_mut(&mut newer).metadata.resource_version = Some("8".into());
        assert_ne!(key(&[&p1, &p2]), key(&[&p1, &newer]));
        let mut recreated = p2.clone();
        Arc::make_mut(&mut recreated).metadata.uid = Some("u3".into());
        assert_ne!(key(&[&p1, &p2]), key(&[&p1, &recreated]));
        assert_ne!(key(&[&p1]), key(&[&p1, &p2]));
    }
}
