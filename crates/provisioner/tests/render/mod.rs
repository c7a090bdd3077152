//! How the golden test writes a plan down: independent of how the plan is held in memory, so the
//! same golden files check the builders before and after a change of their types.

use std::collections::BTreeMap;

use provisioner::plan::Desired;
use serde_json::{Value, json};

/// The plan as one JSON document: every applied child by `Kind/name`, the order of the children
/// of each kind, the secrets generated once, and the certificate secrets the pods wait for.
pub fn desired(desired: &Desired) -> Value {
    let mut children = BTreeMap::new();
    let mut order: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for child in desired.rendered().expect("children render as JSON") {
        let kind = child.kind.kind();
        children.insert(format!("{kind}/{}", child.name), child.body);
        order.entry(kind).or_default().push(child.name);
    }
    let generated: Vec<Value> = desired
        .generated_secrets
        .iter()
        .map(|g| {
            json!({"name": g.name, "type": g.type_, "fixed": g.fixed, "randomKeys": g.random_keys,
                   "metadata": g.metadata})
        })
        .collect();
    let mut certificate_secrets = desired.certificate_secrets();
    certificate_secrets.sort();
    json!({
        "children": children,
        "order": order,
        "generatedSecrets": generated,
        "certificateSecrets": certificate_secrets,
    })
}
