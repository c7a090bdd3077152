//! A small part of the API server's validation of built-in kinds: the mistakes an operator is
//! most likely to make and a real server would reject with 422 (bad label keys and values,
//! workloads whose selector does not select their template, containers without name or image,
//! service ports out of range). Returns field causes in the API server's wording.

use serde_json::Value;

use crate::error::Cause;
use crate::registry::GroupResource;
use crate::selector::LabelSelector;

fn invalid(field: &str, message: String) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message,
        field: field.into(),
    }
}

fn required(field: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: "Required value".into(),
        field: field.into(),
    }
}

/// A label value or the name part of a key: at most 63 characters, alphanumerics, `-`, `_`, `.`,
/// starting and ending with an alphanumeric.
fn is_qualified_part(s: &str) -> bool {
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && ends_ok(s.chars().next())
        && ends_ok(s.chars().last())
}

/// A label or annotation key: `[prefix/]name`, prefix a DNS subdomain.
fn is_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => crate::meta::is_dns_subdomain(prefix) && is_qualified_part(name),
        None => is_qualified_part(key),
    }
}

/// Checks `metadata.labels` and the keys of `metadata.annotations`.
pub fn metadata(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let meta = crate::meta::metadata(obj);
    for (k, v) in meta
        .get("labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if !is_qualified_name(k) {
            causes.push(invalid("metadata.labels", format!("Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)")));
        }
        let text = v.as_str().unwrap_or("");
        if !v.is_string() || (!text.is_empty() && !is_qualified_part(text)) {
            causes.push(invalid("metadata.labels", format!("Invalid value: {v}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)")));
        }
    }
    for k in meta
        .get("annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        if !is_qualified_name(k) {
            causes.push(invalid("metadata.annotations", format!("Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")));
        }
    }
    causes
}

fn pod_spec(spec: Option<&Value>, path: &str, causes: &mut Vec<Cause>) {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    match containers {
        None => causes.push(required(&format!("{path}.containers"))),
        Some(list) if list.is_empty() => causes.push(required(&format!("{path}.containers"))),
        Some(_) => {}
    }
    let mut names = Vec::new();
    for list in ["initContainers", "containers"] {
        for (i, c) in spec
            .and_then(|s| s.get(list))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = format!("{path}.{list}[{i}]");
            match c.get("name").and_then(Value::as_str) {
                None | Some("") => causes.push(required(&format!("{field}.name"))),
                Some(n) if names.contains(&n) => causes.push(Cause {
                    reason: "FieldValueDuplicate".into(),
                    message: format!("Duplicate value: {n:?}"),
                    field: format!("{field}.name"),
                }),
                Some(n) => names.push(n),
            }
            if c.get("image")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                causes.push(required(&format!("{field}.image")));
            }
        }
    }
}

fn workload(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = obj.get("spec");
    let template_labels = spec
        .and_then(|s| s.pointer("/template/metadata"))
        .cloned()
        .unwrap_or(Value::Null);
    match spec.and_then(|s| s.get("selector")) {
        None | Some(Value::Null) => causes.push(required("spec.selector")),
        Some(sel) => match LabelSelector::from_object(sel) {
            Some(s) if s.0.is_empty() => causes.push(invalid(
                "spec.selector",
                "Invalid value: {}: empty selector is invalid for deployment".into(),
            )),
            Some(s) if !s.matches(&serde_json::json!({"metadata": template_labels})) => causes
                .push(invalid(
                    "spec.template.metadata.labels",
                    "Invalid value: selector does not match template labels".into(),
                )),
            Some(_) => {}
            None => causes.push(invalid(
                "spec.selector",
                "Invalid value: invalid label selector".into(),
            )),
        },
    }
    pod_spec(
        spec.and_then(|s| s.pointer("/template/spec")),
        "spec.template.spec",
        causes,
    );
}

fn service(obj: &Value, causes: &mut Vec<Cause>) {
    let kind = obj
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let headless = obj.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
    let ports = obj.pointer("/spec/ports").and_then(Value::as_array);
    if ports.is_none_or(Vec::is_empty) && kind != "ExternalName" && !headless {
        causes.push(required("spec.ports"));
    }
    for (i, p) in ports.into_iter().flatten().enumerate() {
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&port) {
            causes.push(invalid(
                &format!("spec.ports[{i}].port"),
                format!("Invalid value: {port}: must be between 1 and 65535, inclusive"),
            ));
        }
        if ports.is_some_and(|ps| ps.len() > 1)
            && p.get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            causes.push(required(&format!("spec.ports[{i}].name")));
        }
    }
}

/// Validation causes for an object of a built-in kind (empty = valid).
pub fn builtin(gr: &GroupResource, obj: &Value) -> Vec<Cause> {
    let mut causes = metadata(obj);
    match (gr.group.as_str(), gr.resource.as_str()) {
        ("", "pods") => pod_spec(obj.get("spec"), "spec", &mut causes),
        ("apps", "deployments" | "statefulsets" | "replicasets") => workload(obj, &mut causes),
        ("", "services") => service(obj, &mut causes),
        _ => {}
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(causes: Vec<Cause>) -> Vec<String> {
        causes.into_iter().map(|c| c.field).collect()
    }

    #[test]
    fn label_keys_and_values() {
        let cases = [
            (
                json!({"app": "web", "kubedb.com/role": "primary", "e": ""}),
                0,
            ),
            (json!({"bad key": "x"}), 1),
            (json!({"app": "-starts-with-dash"}), 1),
            (json!({"app": "x".repeat(64)}), 1),
            (json!({"Example.com/x": "y"}), 1),
            (json!({"app": 5}), 1),
        ];
        for (labels, n) in cases {
            let obj = json!({"metadata": {"labels": labels}});
            assert_eq!(metadata(&obj).len(), n, "{obj}");
        }
        assert_eq!(
            metadata(&json!({"metadata": {"annotations": {"ok/x": "any value at all!"}}})).len(),
            0
        );
    }

    #[test]
    fn workloads_select_their_templates() {
        let gr = GroupResource::new("apps", "statefulsets");
        let good = json!({"spec": {"selector": {"matchLabels": {"app": "db"}}, "template": {"metadata": {"labels": {"app": "db", "x": "y"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        assert!(builtin(&gr, &good).is_empty());
        let mut bad = good.clone();
        bad["spec"]["selector"]["matchLabels"]["app"] = json!("other");
        assert_eq!(
            fields(builtin(&gr, &bad)),
            ["spec.template.metadata.labels"]
        );
        let mut no_selector = good.clone();
        no_selector["spec"]
            .as_object_mut()
            .unwrap()
            .remove("selector");
        assert_eq!(fields(builtin(&gr, &no_selector)), ["spec.selector"]);
        let mut dup = good;
        dup["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "c", "image": "i"}, {"name": "c"}]);
        assert_eq!(
            fields(builtin(&gr, &dup)),
            [
                "spec.template.spec.containers[1].name",
                "spec.template.spec.containers[1].image"
            ]
        );
    }

    #[test]
    fn pods_and_services() {
        let pods = GroupResource::new("", "pods");
        assert_eq!(
            fields(builtin(&pods, &json!({"spec": {}}))),
            ["spec.containers"]
        );
        let svc = GroupResource::new("", "services");
        assert!(builtin(&svc, &json!({"spec": {"ports": [{"port": 80}]}})).is_empty());
        assert!(builtin(&svc, &json!({"spec": {"clusterIP": "None"}})).is_empty());
        assert_eq!(
            fields(builtin(
                &svc,
                &json!({"spec": {"ports": [{"port": 0, "name": "a"}, {"port": 1}]}})
            )),
            ["spec.ports[0].port", "spec.ports[1].name"]
        );
    }
}
