//! `meta.k8s.io/v1` Table rendering for `kubectl get` (Accept `application/json;as=Table;...`).
//!
//! Custom resources use their CRD's `additionalPrinterColumns`; built-in kinds use a subset of the
//! columns the real API server prints.

use serde_json::{Value, json};

use crate::cluster::present;
use crate::meta;
use crate::registry::{PrinterColumn, ResourceInfo};
use crate::store::Object;

type CellFn = fn(&Value) -> Value;

struct Column {
    name: &'static str,
    type_: &'static str,
    priority: i64,
    cell: CellFn,
}

const fn col(name: &'static str, type_: &'static str, cell: CellFn) -> Column {
    Column {
        name,
        type_,
        priority: 0,
        cell,
    }
}

const fn wide(name: &'static str, type_: &'static str, cell: CellFn) -> Column {
    Column {
        name,
        type_,
        priority: 1,
        cell,
    }
}

fn s(v: &Value, path: &str) -> String {
    meta::lookup(v, path)
        .map(meta::field_string)
        .unwrap_or_default()
}

fn or_none(text: String) -> Value {
    json!(if text.is_empty() {
        "<none>".to_owned()
    } else {
        text
    })
}

fn age(v: &Value) -> Value {
    json!(
        meta::meta_str(v, "creationTimestamp")
            .and_then(meta::age_seconds)
            .map(meta::human_age)
            .unwrap_or_else(|| "<unknown>".into())
    )
}

fn name(v: &Value) -> Value {
    json!(meta::name(v))
}

fn count(v: &Value, path: &str) -> Value {
    json!(
        meta::lookup(v, path)
            .and_then(Value::as_object)
            .map_or(0, |m| m.len())
    )
}

fn int(v: &Value, path: &str) -> i64 {
    meta::lookup(v, path).and_then(Value::as_i64).unwrap_or(0)
}

fn pod_ready(v: &Value) -> Value {
    let total = meta::lookup(v, "spec.containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let ready = meta::lookup(v, "status.containerStatuses")
        .and_then(Value::as_array)
        .map_or(0, |cs| cs.iter().filter(|c| c["ready"] == true).count());
    json!(format!("{ready}/{total}"))
}

fn pod_status(v: &Value) -> Value {
    if meta::is_deleting(v) {
        return json!("Terminating");
    }
    let waiting = meta::lookup(v, "status.containerStatuses")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter().find_map(|c| {
                c.pointer("/state/waiting/reason")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        });
    json!(waiting.unwrap_or_else(|| s(v, "status.phase")))
}

fn pod_restarts(v: &Value) -> Value {
    let n: i64 = meta::lookup(v, "status.containerStatuses")
        .and_then(Value::as_array)
        .map_or(0, |cs| {
            cs.iter().filter_map(|c| c["restartCount"].as_i64()).sum()
        });
    json!(n)
}

fn svc_ports(v: &Value) -> Value {
    let ports: Vec<String> = meta::lookup(v, "spec.ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{}/{}",
                meta::field_string(&p["port"]),
                p["protocol"].as_str().unwrap_or("TCP")
            )
        })
        .collect();
    or_none(ports.join(","))
}

fn builtin_columns(info: &ResourceInfo) -> Vec<Column> {
    let mut cols = vec![col("Name", "string", name)];
    // Columns read the stored form: events.k8s.io Events print as core Events do.
    let gr = info.gr();
    let stored = gr.storage();
    let extra: Vec<Column> = match (stored.group.as_str(), stored.resource.as_str()) {
        ("", "pods") => vec![
            col("Ready", "string", pod_ready),
            col("Status", "string", pod_status),
            col("Restarts", "string", pod_restarts),
            col("Age", "string", age),
            wide("IP", "string", |v| or_none(s(v, "status.podIP"))),
            wide("Node", "string", |v| or_none(s(v, "spec.nodeName"))),
        ],
        ("", "services") => vec![
            col("Type", "string", |v| json!(s(v, "spec.type"))),
            col("Cluster-IP", "string", |v| or_none(s(v, "spec.clusterIP"))),
            col("External-IP", "string", |_| json!("<none>")),
            col("Port(s)", "string", svc_ports),
            col("Age", "string", age),
        ],
        ("", "namespaces") => vec![
            col("Status", "string", |v| json!(s(v, "status.phase"))),
            col("Age", "string", age),
        ],
        ("", "secrets") => vec![
            col("Type", "string", |v| json!(s(v, "type"))),
            col("Data", "integer", |v| count(v, "data")),
            col("Age", "string", age),
        ],
        ("", "configmaps") => vec![
            col("Data", "integer", |v| count(v, "data")),
            col("Age", "string", age),
        ],
        ("", "persistentvolumeclaims") => vec![
            col("Status", "string", |v| json!(s(v, "status.phase"))),
            col("Volume", "string", |v| json!(s(v, "spec.volumeName"))),
            col("Capacity", "string", |v| {
                json!(s(v, "status.capacity.storage"))
            }),
            col("StorageClass", "string", |v| {
                json!(s(v, "spec.storageClassName"))
            }),
            col("Age", "string", age),
        ],
        ("apps", "deployments") => vec![
            col("Ready", "string", |v| {
                json!(format!(
                    "{}/{}",
                    int(v, "status.readyReplicas"),
                    int(v, "spec.replicas")
                ))
            }),
            col("Up-to-date", "integer", |v| {
                json!(int(v, "status.updatedReplicas"))
            }),
            col("Available", "integer", |v| {
                json!(int(v, "status.availableReplicas"))
            }),
            col("Age", "string", age),
        ],
        ("apps", "statefulsets") | ("apps", "replicasets") => vec![
            col("Ready", "string", |v| {
                json!(format!(
                    "{}/{}",
                    int(v, "status.readyReplicas"),
                    int(v, "spec.replicas")
                ))
            }),
            col("Age", "string", age),
        ],
        ("policy", "poddisruptionbudgets") => vec![
            col("Min Available", "string", |v| {
                or_none(s(v, "spec.minAvailable"))
            }),
            col("Max Unavailable", "string", |v| {
                or_none(s(v, "spec.maxUnavailable"))
            }),
            col("Allowed Disruptions", "integer", |v| {
                json!(int(v, "status.disruptionsAllowed"))
            }),
            col("Age", "string", age),
        ],
        ("coordination.k8s.io", "leases") => vec![
            col("Holder", "string", |v| json!(s(v, "spec.holderIdentity"))),
            col("Age", "string", age),
        ],
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            vec![col("Created At", "date", |v| {
                json!(meta::meta_str(v, "creationTimestamp").unwrap_or_default())
            })]
        }
        ("", "events") => vec![
            col("Type", "string", |v| json!(s(v, "type"))),
            col("Reason", "string", |v| json!(s(v, "reason"))),
            col("Object", "string", |v| {
                json!(format!(
                    "{}/{}",
                    s(v, "involvedObject.kind").to_lowercase(),
                    s(v, "involvedObject.name")
                ))
            }),
            col("Message", "string", |v| json!(s(v, "message"))),
        ],
        _ => vec![col("Age", "string", age)],
    };
    cols.extend(extra);
    cols
}

/// Evaluates the simple JSONPath forms printer columns use: `.a.b`, `.a[0].b`, `.a[*].b`,
/// `.a[?(@.type=="Ready")].status`. Returns every match.
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Vec<&'a Value> {
    let path = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    let mut current = vec![obj];
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            current = current.into_iter().filter_map(|v| v.get(key)).collect();
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return vec![];
            };
            let sel = &r[..end];
            rest = &r[end + 1..];
            let mut next = Vec::new();
            for v in current {
                let Some(items) = v.as_array() else { continue };
                if sel == "*" {
                    next.extend(items.iter());
                } else if let Ok(i) = sel.parse::<usize>() {
                    next.extend(items.get(i));
                } else if let Some(filter) =
                    sel.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')'))
                {
                    let Some((field, want)) = filter.split_once("==") else {
                        continue;
                    };
                    let want = want.trim().trim_matches(['"', '\'']);
                    next.extend(items.iter().filter(|i| {
                        meta::lookup(i, field.trim())
                            .map(meta::field_string)
                            .as_deref()
                            == Some(want)
                    }));
                }
            }
            current = next;
        } else {
            return vec![];
        }
    }
    current
}

fn custom_cell(obj: &Value, c: &PrinterColumn) -> Value {
    let found = json_path(obj, &c.json_path);
    let Some(first) = found.first() else {
        return Value::Null;
    };
    match c.type_.as_str() {
        "date" => json!(
            first
                .as_str()
                .and_then(meta::age_seconds)
                .map(meta::human_age)
                .unwrap_or_else(|| "<unknown>".into())
        ),
        "integer" | "number" | "boolean" if !first.is_string() => (*first).clone(),
        _ if found.len() > 1 => json!(
            found
                .iter()
                .map(|v| meta::field_string(v))
                .collect::<Vec<_>>()
                .join(",")
        ),
        _ => json!(meta::field_string(first)),
    }
}

/// The `meta.k8s.io/v1` PartialObjectMetadata of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

fn row_object(obj: &Object, include: &str) -> Value {
    match include {
        "None" => Value::Null,
        "Object" => (**obj).clone(),
        _ => partial_metadata(obj),
    }
}

/// Renders objects as a Table. `include` is the `includeObject` parameter (None, Metadata, Object).
pub fn table(
    info: &ResourceInfo,
    version: &str,
    objs: &[Object],
    include: &str,
    resource_version: Option<u64>,
) -> Value {
    let custom_cols: Option<&Vec<PrinterColumn>> = info
        .custom
        .then(|| info.version(version).map(|v| &v.columns))
        .flatten();
    let (defs, rows): (Vec<Value>, Vec<Value>) = match custom_cols {
        Some(cols) if !cols.is_empty() => {
            let mut defs = vec![
                json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
            ];
            defs.extend(cols.iter().map(|c| json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority})));
            let rows = objs
                .iter()
                .map(|o| {
                    let mut cells = vec![json!(meta::name(o))];
                    cells.extend(cols.iter().map(|c| custom_cell(o, c)));
                    json!({"cells": cells, "object": row_object(&present(info, version, o), include)})
                })
                .collect();
            (defs, rows)
        }
        _ => {
            let cols = if info.custom {
                vec![col("Name", "string", name), col("Age", "date", age)]
            } else {
                builtin_columns(info)
            };
            let defs = cols
                .iter()
                .map(|c| json!({"name": c.name, "type": c.type_, "format": if c.name == "Name" { "name" } else { "" }, "description": "", "priority": c.priority}))
                .collect();
            let rows = objs
                .iter()
                .map(|o| json!({"cells": cols.iter().map(|c| (c.cell)(o)).collect::<Vec<_>>(), "object": row_object(&present(info, version, o), include)}))
                .collect();
            (defs, rows)
        }
    };
    let mut t = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": defs, "rows": rows});
    if let Some(rv) = resource_version {
        t["metadata"]["resourceVersion"] = json!(rv.to_string());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Registry, crd_resource};
    use std::sync::Arc;

    #[test]
    fn json_paths() {
        let obj = json!({"spec": {"size": 3, "items": [{"n": "a"}, {"n": "b"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]}});
        let one = |p: &str| json_path(&obj, p).first().map(|v| meta::field_string(v));
        assert_eq!(one(".spec.size").as_deref(), Some("3"));
        assert_eq!(one(".spec.items[1].n").as_deref(), Some("b"));
        assert_eq!(json_path(&obj, ".spec.items[*].n").len(), 2);
        assert_eq!(
            one(".status.conditions[?(@.type==\"Ready\")].status").as_deref(),
            Some("True")
        );
        assert_eq!(
            one("{.status.conditions[?(@.type=='Synced')].status}").as_deref(),
            Some("False")
        );
        assert!(one(".status.missing").is_none());
    }

    #[test]
    fn crd_printer_columns() {
        let crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                                             {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}]}]}});
        let info = crd_resource(&crd).unwrap();
        let obj = Arc::new(
            json!({"metadata": {"name": "w1"}, "spec": {"size": 2}, "status": {"phase": "Ready"}}),
        );
        let t = table(&info, "v1", &[obj], "Metadata", Some(7));
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Name", "Size", "Phase"]);
        assert_eq!(t["rows"][0]["cells"], json!(["w1", 2, "Ready"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn pod_columns() {
        let r = Registry::builtin();
        let info = r.lookup("", "v1", "pods").unwrap();
        let pod = Arc::new(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Pending", "containerStatuses": [{"ready": true, "restartCount": 1}, {"ready": false, "restartCount": 2, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}),
        );
        let t = table(&info, "v1", &[pod], "None", None);
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "ImagePullBackOff");
        assert_eq!(cells[3], 3);
    }
}
