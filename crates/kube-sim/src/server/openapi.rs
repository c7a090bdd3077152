//! A minimal OpenAPI v3 document set: enough for kubectl and helm to see that every served kind
//! supports server-side field validation (`fieldValidation` on PATCH), so they validate on the
//! server instead of downloading schemas. No component schemas are served (`kubectl explain`
//! does not work); clients fall back to their built-in types for strategic merge patches.

use serde_json::{Map, Value, json};

use crate::registry::Registry;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Served group versions as (group, version).
fn group_versions(registry: &Registry) -> Vec<(String, String)> {
    registry
        .groups()
        .into_iter()
        .flat_map(|(g, vs)| vs.into_iter().map(move |v| (g.clone(), v)))
        .collect()
}

/// `/openapi/v3`: the index of group-version documents. `hash` changes whenever the set of served
/// kinds changes, so clients that cache by URL refetch.
pub fn index(registry: &Registry, hash: u64) -> Value {
    let paths: Map<String, Value> = group_versions(registry)
        .into_iter()
        .map(|(g, v)| {
            let p = gv_path(&g, &v);
            let url = format!("/openapi/v3/{p}?hash={hash:016X}");
            (p, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources = registry.resources_in(group, version);
    if resources.is_empty() {
        return None;
    }
    let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string"}, "uniqueItems": true});
    let mut paths = Map::new();
    for r in resources {
        let base = format!("/{}", gv_path(group, version));
        let path = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{base}/{}/{{name}}", r.plural)
        };
        let gvk = json!({"group": group, "version": version, "kind": r.kind});
        let patch = json!({
            "operationId": format!("patch{}", r.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [query("dryRun"), query("fieldManager"), query("fieldValidation"), query("force")],
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(path, json!({"patch": patch}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{}.{}.0", super::KUBERNETES_VERSION.0, super::KUBERNETES_VERSION.1)},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_list_patch_operations_with_field_validation() {
        let r = Registry::builtin();
        let idx = index(&r, 7);
        assert_eq!(
            idx["paths"]["apis/apps/v1"]["serverRelativeURL"],
            "/openapi/v3/apis/apps/v1?hash=0000000000000007"
        );
        let doc = group_version(&r, "", "v1").unwrap();
        let op = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "ConfigMap");
        assert!(
            op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(doc["paths"].get("/api/v1/namespaces/{name}").is_some());
        assert!(group_version(&r, "nope", "v1").is_none());
    }
}
