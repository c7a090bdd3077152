//! Defaulting of built-in kinds: the subset of the API server's defaults that kubectl, helm and our
//! operators observe. Applied on every create and update, like the real server's decoding defaults.

use serde_json::{Map, Value, json};

use crate::registry::GroupResource;

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let m = v.as_object_mut().expect("object");
    let e = m.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !e.is_object() {
        *e = Value::Object(Map::new());
    }
    e.as_object_mut().expect("object")
}

fn default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_owned(), value);
    }
}

fn image_pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        "IfNotPresent"
    } else {
        match last.split_once(':') {
            None => "Always",
            Some((_, "latest")) => "Always",
            Some(_) => "IfNotPresent",
        }
    }
}

fn default_ports(ports: Option<&mut Value>) {
    for port in ports.and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(p) = port.as_object_mut() {
            default(p, "protocol", json!("TCP"));
        }
    }
}

/// Defaults of a pod spec (also used for templates).
pub fn pod_spec(spec: &mut Map<String, Value>) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "securityContext", json!({}));
    for list in ["initContainers", "containers"] {
        for c in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(c) = c.as_object_mut() else { continue };
            let image = c
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            default(c, "imagePullPolicy", json!(image_pull_policy(&image)));
            default(c, "terminationMessagePath", json!("/dev/termination-log"));
            default(c, "terminationMessagePolicy", json!("File"));
            default(c, "resources", json!({}));
            default_ports(c.get_mut("ports"));
        }
    }
}

fn template(spec: &mut Map<String, Value>) {
    if let Some(t) = spec.get_mut("template") {
        pod_spec(obj_mut(t, "spec"));
    }
}

/// Cluster IP allocator state: the next address handed out.
#[derive(Debug)]
pub struct IpAllocator(u32);

impl Default for IpAllocator {
    fn default() -> Self {
        // 10.96.0.10 onwards; 10.96.0.1 is conventionally the `kubernetes` service.
        IpAllocator(10)
    }
}

impl IpAllocator {
    /// The next free service IP.
    pub fn next(&mut self) -> String {
        let n = self.0;
        self.0 += 1;
        format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff)
    }
}

/// Applies defaults to `obj` of resource `gr`; `old` is the stored object on update.
pub fn apply(gr: &GroupResource, obj: &mut Value, old: Option<&Value>, ips: &mut IpAllocator) {
    match (gr.group.as_str(), gr.resource.as_str()) {
        ("", "namespaces") => {
            default(obj_mut(obj, "spec"), "finalizers", json!(["kubernetes"]));
            default(obj_mut(obj, "status"), "phase", json!("Active"));
        }
        ("", "pods") => pod_spec(obj_mut(obj, "spec")),
        ("", "secrets") => secret(obj),
        ("", "persistentvolumeclaims") => {
            default(obj_mut(obj, "spec"), "volumeMode", json!("Filesystem"))
        }
        ("", "services") => service(obj, old, ips),
        ("apps", "statefulsets") => {
            let spec = obj_mut(obj, "spec");
            default(spec, "replicas", json!(1));
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            default(spec, "revisionHistoryLimit", json!(10));
            default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            template(spec);
        }
        ("apps", "deployments") => {
            let spec = obj_mut(obj, "spec");
            default(spec, "replicas", json!(1));
            default(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            template(spec);
        }
        ("apps", "replicasets") | ("batch", "jobs") => template(obj_mut(obj, "spec")),
        _ => {}
    }
}

/// Secrets: `type` defaults to Opaque; `stringData` is merged into `data` (base64) and dropped,
/// as the API server does on every write.
fn secret(obj: &mut Value) {
    let m = obj.as_object_mut().expect("object");
    default(m, "type", json!("Opaque"));
    if let Some(Value::Object(strings)) = m.remove("stringData") {
        let data = m.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        for (k, v) in strings {
            let text = v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            data[k] = json!(crate::meta::base64(text.as_bytes()));
        }
    }
}

fn service(obj: &mut Value, old: Option<&Value>, ips: &mut IpAllocator) {
    let old_ip = old
        .and_then(|o| o.pointer("/spec/clusterIP"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let spec = obj_mut(obj, "spec");
    default(spec, "type", json!("ClusterIP"));
    default(spec, "sessionAffinity", json!("None"));
    let external = spec.get("type").and_then(Value::as_str) == Some("ExternalName");
    if !external {
        if spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            let ip = old_ip.unwrap_or_else(|| ips.next());
            spec.insert("clusterIP".into(), json!(ip));
        }
        let ip = spec["clusterIP"].clone();
        default(spec, "clusterIPs", json!([ip]));
        default(spec, "ipFamilies", json!(["IPv4"]));
        default(spec, "ipFamilyPolicy", json!("SingleStack"));
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    for port in spec
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(p) = port.as_object_mut() {
            default(p, "protocol", json!("TCP"));
            if let Some(n) = p.get("port").cloned() {
                default(p, "targetPort", n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies() {
        for (image, want) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.2", "IfNotPresent"),
            ("r:5000/x", "Always"),
            ("x@sha256:ab", "IfNotPresent"),
        ] {
            assert_eq!(image_pull_policy(image), want, "{image}");
        }
    }

    #[test]
    fn services_get_ips_and_port_defaults() {
        let mut ips = IpAllocator::default();
        let gr = GroupResource::new("", "services");
        let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
        apply(&gr, &mut svc, None, &mut ips);
        assert_eq!(svc["spec"]["clusterIP"], "10.96.0.10");
        assert_eq!(
            svc["spec"]["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        let mut headless = json!({"spec": {"clusterIP": "None"}});
        apply(&gr, &mut headless, None, &mut ips);
        assert_eq!(headless["spec"]["clusterIP"], "None");
        let mut updated = json!({"spec": {}});
        apply(&gr, &mut updated, Some(&svc), &mut ips);
        assert_eq!(updated["spec"]["clusterIP"], "10.96.0.10");
    }

    #[test]
    fn secret_string_data_moves_to_data() {
        let mut ips = IpAllocator::default();
        let mut s = json!({"data": {"a": "eA=="}, "stringData": {"b": "foo", "a": "y"}});
        apply(&GroupResource::new("", "secrets"), &mut s, None, &mut ips);
        assert_eq!(
            s,
            json!({"type": "Opaque", "data": {"a": "eQ==", "b": "Zm9v"}})
        );
    }

    #[test]
    fn workloads_get_defaults() {
        let mut ips = IpAllocator::default();
        let mut sts = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "db:1", "ports": [{"containerPort": 1}]}]}}}});
        apply(
            &GroupResource::new("apps", "statefulsets"),
            &mut sts,
            None,
            &mut ips,
        );
        assert_eq!(sts["spec"]["replicas"], 1);
        assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
        let c = &sts["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(
            sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
            30
        );
    }
}
