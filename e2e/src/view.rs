//! A readable picture of the databases, their pods and the ops requests in a namespace, as lines a
//! person can follow while an update runs (the demo prints the lines that change).

use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;

use api::mssql::MSSQLServer;
use api::ops::{MSSQLServerOpsRequest, SinglestoreOpsRequest};
use api::singlestore::Singlestore;

fn resource<K: Resource<DynamicType = ()>>() -> ApiResource {
    ApiResource::erase::<K>(&())
}

async fn list(client: &kube::Client, ns: &str, ar: &ApiResource) -> Vec<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("-")
}

/// The last condition of an object's status, as `type (reason): message`.
pub fn latest_condition(status: &Value) -> String {
    let Some(last) = status
        .pointer("/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.last())
    else {
        return "-".to_owned();
    };
    let mut out = text(last, "/type").to_owned();
    if let Some(reason) = last
        .pointer("/reason")
        .and_then(Value::as_str)
        .filter(|r| *r != out)
    {
        out.push_str(&format!(" ({reason})"));
    }
    if let Some(message) = last.pointer("/message").and_then(Value::as_str) {
        out.push_str(&format!(": {message}"));
    }
    out
}

/// The image's tag (or last path segment), enough to tell versions apart.
pub fn short_image(image: &str) -> &str {
    image.rsplit('/').next().unwrap_or(image)
}

/// One line per database, pod and ops request in `ns`.
pub async fn snapshot(client: &kube::Client, ns: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for (kind, ar) in [
        ("MSSQLServer", resource::<MSSQLServer>()),
        ("Singlestore", resource::<Singlestore>()),
    ] {
        for db in list(client, ns, &ar).await {
            let v = serde_json::to_value(&db).unwrap_or_default();
            lines.push(format!(
                "{kind} {}: phase {}, version {}",
                db.metadata.name.clone().unwrap_or_default(),
                text(&v, "/status/phase"),
                text(&v, "/spec/version"),
            ));
        }
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = "app.kubernetes.io/managed-by=kubedb.com";
    let mut pods = pods
        .list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let role = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubedb.com/role"))
            .cloned()
            .unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let state = if pod.metadata.deletion_timestamp.is_some() {
            "Terminating"
        } else if ready {
            "Ready"
        } else {
            status.phase.as_deref().unwrap_or("Pending")
        };
        let main = status
            .container_statuses
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.name == "mssql" || c.name == "singlestore");
        let image = main
            .map(|c| short_image(&c.image).to_owned())
            .unwrap_or_else(|| "-".to_owned());
        lines.push(format!("  pod {name:<32} {role:<10} {state:<11} {image}"));
    }
    for (kind, ar) in [
        ("MSSQLServerOpsRequest", resource::<MSSQLServerOpsRequest>()),
        ("SinglestoreOpsRequest", resource::<SinglestoreOpsRequest>()),
    ] {
        for req in list(client, ns, &ar).await {
            let v = serde_json::to_value(&req).unwrap_or_default();
            lines.push(format!(
                "{kind} {}: {} → {}",
                req.metadata.name.clone().unwrap_or_default(),
                text(&v, "/status/phase"),
                latest_condition(v.pointer("/status").unwrap_or(&Value::Null)),
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_condition_reads_the_last_entry() {
        let status = serde_json::json!({"conditions": [
            {"type": "UpdateVersion", "reason": "UpdateVersion"},
            {"type": "EvictPod--db-1", "message": "evict pod; ConditionStatus:True; PodName:db-1"}
        ]});
        assert_eq!(
            latest_condition(&status),
            "EvictPod--db-1: evict pod; ConditionStatus:True; PodName:db-1"
        );
        let failed = serde_json::json!({"conditions": [{"type": "RestartPods", "reason": "Failed", "message": "boom"}]});
        assert_eq!(latest_condition(&failed), "RestartPods (Failed): boom");
        assert_eq!(latest_condition(&serde_json::json!({})), "-");
    }

    #[test]
    fn short_image_keeps_the_tag() {
        assert_eq!(
            short_image("mcr.microsoft.com/mssql/server:2025-RTM-ubuntu-22.04"),
            "server:2025-RTM-ubuntu-22.04"
        );
        assert_eq!(short_image("busybox"), "busybox");
    }
}
