//! Endpoints controller: every Service with a selector gets a core/v1 Endpoints object `<svc>`
//! and a discovery.k8s.io/v1 EndpointSlice `<svc>-kube-sim` listing the pods it selects.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::pods::{is_ready, is_terminating};
use super::util::{LabelIndex, inputs_fingerprint, uid_and_version};

/// Removes `null` members (absent optional fields), so applied bodies hold only set fields.
pub fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// One selected pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub ip: String,
    pub pod: String,
    pub uid: String,
    pub node: Option<String>,
    pub hostname: Option<String>,
    pub ready: bool,
    pub terminating: bool,
}

/// A Service port with its target resolved to a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub name: Option<String>,
    pub port: i32,
    pub protocol: String,
}

/// Resolves a Service port's `targetPort` (number, or a container port name looked up in a pod).
pub fn resolve_port(target: Option<&IntOrString>, port: i32, pod: Option<&Pod>) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => pod?
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port),
    }
}

/// The core/v1 Endpoints body: Ready pods as addresses, others (not terminating) as
/// notReadyAddresses; `publish_not_ready` counts every non-terminating pod as ready.
pub fn endpoints_body(
    svc: &Service,
    addresses: &[Address],
    ports: &[Port],
    publish_not_ready: bool,
) -> Value {
    let ns = svc.namespace().unwrap_or_default();
    let render = |a: &Address| {
        json!({"ip": a.ip, "nodeName": a.node, "hostname": a.hostname,
               "targetRef": {"kind": "Pod", "name": a.pod, "namespace": ns, "uid": a.uid}})
    };
    let live: Vec<&Address> = addresses.iter().filter(|a| !a.terminating).collect();
    let ready: Vec<Value> = live
        .iter()
        .filter(|a| a.ready || publish_not_ready)
        .map(|a| render(a))
        .collect();
    let not_ready: Vec<Value> = live
        .iter()
        .filter(|a| !(a.ready || publish_not_ready))
        .map(|a| render(a))
        .collect();
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| json!({"name": p.name, "port": p.port, "protocol": p.protocol}))
        .collect();
    let subsets = if live.is_empty() {
        json!([])
    } else {
        let mut subset = json!({"ports": ports});
        if !ready.is_empty() {
            subset["addresses"] = json!(ready);
        }
        if !not_ready.is_empty() {
            subset["notReadyAddresses"] = json!(not_ready);
        }
        json!([subset])
    };
    strip_nulls(json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": svc.name_any(), "namespace": ns,
                     "labels": {"kubernetes.io/service-name": svc.name_any()}},
        "subsets": subsets,
    }))
}

/// The EndpointSlice body.
pub fn slice_body(
    svc: &Service,
    addresses: &[Address],
    ports: &[Port],
    publish_not_ready: bool,
) -> Value {
    let ns = svc.namespace().unwrap_or_default();
    let endpoints: Vec<Value> = addresses
        .iter()
        .map(|a| {
            json!({
                "addresses": [a.ip],
                "conditions": {"ready": (a.ready || publish_not_ready) && !a.terminating,
                               "serving": a.ready || publish_not_ready, "terminating": a.terminating},
                "nodeName": a.node,
                "hostname": a.hostname,
                "targetRef": {"kind": "Pod", "name": a.pod, "namespace": ns, "uid": a.uid},
            })
        })
        .collect();
    strip_nulls(json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{}-kube-sim", svc.name_any()),
            "namespace": ns,
            "labels": {"kubernetes.io/service-name": svc.name_any(),
                       "endpointslice.kubernetes.io/managed-by": "kube-sim"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": svc.name_any(),
                                 "uid": svc.uid(), "controller": true, "blockOwnerDeletion": true}],
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports.iter().map(|p| json!({"name": p.name, "port": p.port, "protocol": p.protocol})).collect::<Vec<_>>(),
    }))
}

/// The endpoints controller.
pub struct Controller {
    pub client: Client,
    pub services: Store<Service>,
    pub pods: Store<Pod>,
    /// Last bodies written per Service uid, so unchanged Services cause no writes.
    pub written: HashMap<String, (Value, Value)>,
    /// The inputs (the Service's and its selected pods' resourceVersions) each Service's bodies
    /// were last computed from, so a pass skips the Services whose inputs have not changed.
    pub computed: HashMap<String, String>,
}

impl Controller {
    async fn pass_once(&mut self) -> anyhow::Result<Option<Duration>> {
        let pods = self.pods.state();
        let index = LabelIndex::new(&pods);
        let services = self.services.state();
        let live: std::collections::HashSet<String> =
            services.iter().filter_map(|s| s.uid()).collect();
        self.written.retain(|uid, _| live.contains(uid));
        self.computed.retain(|uid, _| live.contains(uid));
        for svc in services {
            let spec = svc.spec.clone().unwrap_or_default();
            let Some(uid) = svc.uid() else { continue };
            let ns = svc.namespace().unwrap_or_default();
            if spec.selector.as_ref().is_none_or(|s| s.is_empty())
                || spec.type_.as_deref() == Some("ExternalName")
            {
                continue;
            }
            let selected: Vec<&std::sync::Arc<Pod>> = index
                .select_map(&ns, spec.selector.as_ref())
                .into_iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some())
                .collect();
            let inputs = inputs_fingerprint(
                svc.as_ref(),
                selected.iter().map(|p| uid_and_version(p.as_ref())),
            );
            if self.computed.get(&uid) == Some(&inputs) {
                continue;
            }
            let no_spec = k8s_openapi::api::core::v1::PodSpec::default();
            let mut addresses: Vec<Address> = selected
                .iter()
                .map(|p| {
                    let pod_spec = p.spec.as_ref().unwrap_or(&no_spec);
                    let same_subdomain =
                        pod_spec.subdomain.as_deref() == Some(svc.name_any().as_str());
                    Address {
                        ip: p
                            .status
                            .as_ref()
                            .and_then(|s| s.pod_ip.clone())
                            .unwrap_or_default(),
                        pod: p.name_any(),
                        uid: p.uid().unwrap_or_default(),
                        node: pod_spec.node_name.clone(),
                        hostname: if same_subdomain {
                            pod_spec.hostname.clone()
                        } else {
                            None
                        },
                        ready: is_ready(p),
                        terminating: is_terminating(p),
                    }
                })
                .collect();
            addresses.sort_by(|a, b| a.pod.cmp(&b.pod));
            let first_pod = selected.first().map(|p| p.as_ref());
            let ports: Vec<Port> = spec
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    Some(Port {
                        name: p.name.clone(),
                        port: resolve_port(p.target_port.as_ref(), p.port, first_pod)?,
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                    })
                })
                .collect();
            let publish = spec.publish_not_ready_addresses.unwrap_or(false);
            let endpoints = endpoints_body(&svc, &addresses, &ports, publish);
            let slice = slice_body(&svc, &addresses, &ports, publish);
            if self.written.get(&uid) == Some(&(endpoints.clone(), slice.clone())) {
                self.computed.insert(uid, inputs);
                continue;
            }
            let params = PatchParams::apply("kube-sim-endpoints").force();
            let ep_api: Api<DynamicObject> = Api::namespaced_with(
                self.client.clone(),
                &ns,
                &ApiResource {
                    group: String::new(),
                    version: "v1".into(),
                    api_version: "v1".into(),
                    kind: "Endpoints".into(),
                    plural: "endpoints".into(),
                },
            );
            let slice_api: Api<DynamicObject> = Api::namespaced_with(
                self.client.clone(),
                &ns,
                &ApiResource {
                    group: "discovery.k8s.io".into(),
                    version: "v1".into(),
                    api_version: "discovery.k8s.io/v1".into(),
                    kind: "EndpointSlice".into(),
                    plural: "endpointslices".into(),
                },
            );
            ep_api
                .patch(&svc.name_any(), &params, &Patch::Apply(&endpoints))
                .await?;
            let slice_name = format!("{}-kube-sim", svc.name_any());
            slice_api
                .patch(&slice_name, &params, &Patch::Apply(&slice))
                .await?;
            self.written.insert(uid.clone(), (endpoints, slice));
            self.computed.insert(uid, inputs);
        }
        Ok(None)
    }
}

impl super::informers::Pass for Controller {
    async fn pass(&mut self) -> anyhow::Result<Option<Duration>> {
        self.pass_once().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "ns", "uid": "s1"},
            "spec": {"selector": {"app": "db"}, "ports": [{"name": "sql", "port": 1433, "targetPort": "db"}]}
        }))
        .unwrap()
    }

    fn addr(pod: &str, ready: bool, terminating: bool) -> Address {
        Address {
            ip: format!("127.1.1.{}", pod.len()),
            pod: pod.into(),
            uid: format!("u-{pod}"),
            node: Some("n".into()),
            hostname: None,
            ready,
            terminating,
        }
    }

    #[test]
    fn resolves_target_ports() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "db", "containerPort": 1433}]}]}
        }))
        .unwrap();
        assert_eq!(resolve_port(None, 80, None), Some(80));
        assert_eq!(
            resolve_port(Some(&IntOrString::Int(8080)), 80, None),
            Some(8080)
        );
        assert_eq!(
            resolve_port(Some(&IntOrString::String("db".into())), 80, Some(&pod)),
            Some(1433)
        );
        assert_eq!(
            resolve_port(Some(&IntOrString::String("x".into())), 80, Some(&pod)),
            None
        );
    }

    #[test]
    fn endpoints_split_ready_and_not_ready() {
        let ports = [Port {
            name: Some("sql".into()),
            port: 1433,
            protocol: "TCP".into(),
        }];
        let addresses = [
            addr("a", true, false),
            addr("bb", false, false),
            addr("ccc", true, true),
        ];
        let body = endpoints_body(&svc(), &addresses, &ports, false);
        let subset = &body["subsets"][0];
        assert_eq!(subset["addresses"].as_array().unwrap().len(), 1);
        assert_eq!(subset["addresses"][0]["targetRef"]["name"], "a");
        assert_eq!(subset["notReadyAddresses"][0]["targetRef"]["name"], "bb");
        assert_eq!(subset["ports"][0]["port"], 1433);
        assert!(
            subset["addresses"][0].get("hostname").is_none(),
            "no nulls: {subset}"
        );
        let published = endpoints_body(&svc(), &addresses, &ports, true);
        assert_eq!(
            published["subsets"][0]["addresses"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            endpoints_body(&svc(), &[], &ports, false)["subsets"],
            json!([])
        );

        let slice = slice_body(&svc(), &addresses, &ports, false);
        assert_eq!(
            slice["metadata"]["labels"]["kubernetes.io/service-name"],
            "db"
        );
        let conditions: Vec<(bool, bool)> = slice["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["conditions"]["ready"].as_bool().unwrap(),
                    e["conditions"]["terminating"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(conditions, [(true, false), (false, false), (false, true)]);
    }
}
