//! Database manifests and helpers shared by the operators' integration tests.

use std::future::Future;

use api::{MSSQLServer, Singlestore};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

/// Namespace the fixtures live in.
pub const NS: &str = "demo";
/// Name of the cert-manager Issuer the MSSQL fixtures reference.
pub const ISSUER: &str = "selfsigned";
/// Name of the SingleStore license secret the fixtures reference.
pub const LICENSE: &str = "license";

/// Runs an async test body on a multi-threaded runtime with large stacks: kube-sim's in-process
/// API server validates objects against deep CRD schemas (and CEL rules) on the caller's stack,
/// which overflows the default 2 MiB test-thread stack in debug builds.
pub fn run<F>(body: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let thread = std::thread::Builder::new()
        .stack_size(32 * 1024 * 1024)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(16 * 1024 * 1024)
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(body)
        })
        .expect("test thread");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// A 1 GiB ReadWriteOnce PVC spec.
pub fn storage() -> serde_json::Value {
    json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})
}

/// An MSSQLServer in [`NS`]: standalone without `ag_replicas`, otherwise an AvailabilityGroup.
pub fn mssql(name: &str, version: &str, ag_replicas: Option<i32>) -> MSSQLServer {
    let mut spec = json!({
        "version": version,
        "storageType": "Durable",
        "storage": storage(),
        "tls": {"issuerRef": {"apiGroup": "cert-manager.io", "kind": "Issuer", "name": ISSUER}, "clientTLS": false},
        "podTemplate": {"spec": {"containers": [{"name": "mssql", "env": [
            {"name": "ACCEPT_EULA", "value": "Y"},
            {"name": "MSSQL_PID", "value": "Evaluation"},
        ]}]}},
        "deletionPolicy": "WipeOut",
    });
    if let Some(replicas) = ag_replicas {
        spec["replicas"] = json!(replicas);
        spec["topology"] =
            json!({"mode": "AvailabilityGroup", "availabilityGroup": {"databases": ["agdb"]}});
    }
    serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1alpha2",
        "kind": "MSSQLServer",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }))
    .expect("a valid MSSQLServer")
}

/// A Singlestore in [`NS`]: standalone, or aggregator/leaf with the given replicas.
pub fn singlestore(name: &str, version: &str, topology: Option<(i32, i32)>) -> Singlestore {
    let mut spec = json!({
        "version": version,
        "storageType": "Durable",
        "storage": storage(),
        "licenseSecret": {"name": LICENSE},
        "deletionPolicy": "WipeOut",
    });
    if let Some((aggregators, leaves)) = topology {
        spec["topology"] = json!({
            "aggregator": {"replicas": aggregators, "storage": storage()},
            "leaf": {"replicas": leaves, "storage": storage()},
        });
    }
    serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1alpha2",
        "kind": "Singlestore",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }))
    .expect("a valid Singlestore")
}

/// Creates the SingleStore license secret [`LICENSE`] in [`NS`].
pub async fn create_license(client: &Client) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(LICENSE.into()),
            ..Default::default()
        },
        string_data: Some(
            [
                ("username".to_owned(), "license".to_owned()),
                (
                    "password".to_owned(),
                    "BGxpY2Vuc2Uta2V5LWZvci10ZXN0cw==".to_owned(),
                ),
            ]
            .into(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .expect("license secret");
}

/// Creates `object` in [`NS`], failing the test with the API error.
pub async fn create<K>(client: &Client, object: &K) -> K
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    Api::<K>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), object)
        .await
        .unwrap_or_else(|e| panic!("creating {}: {e}", object.name_any()))
}

/// A plain HTTP/1.1 GET of `path` on `addr` (`host:port`), for an operator's `/metrics`,
/// `/healthz` and `/readyz`: the status code and body, or `None` when nothing answers.
pub async fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    Some((status, body.to_owned()))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Sends SIGTERM to an operator process, asserts it exits 0 within 15 s, and asserts it released
/// its leader-election Lease `lease` (no holder left).
pub async fn sigterm_exits_and_releases_lease(
    child: &mut tokio::process::Child,
    leases: &Api<k8s_openapi::api::coordination::v1::Lease>,
    lease: &str,
) {
    let pid = child.id().expect("running");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let exit = tokio::time::timeout(std::time::Duration::from_secs(15), child.wait())
        .await
        .expect("exits within 15s of SIGTERM")
        .expect("wait for the process");
    assert!(exit.success(), "exit status {exit:?}");
    let holder = leases
        .get(lease)
        .await
        .expect("the Lease exists")
        .spec
        .and_then(|s| s.holder_identity);
    assert!(
        holder.as_deref().unwrap_or_default().is_empty(),
        "Lease {lease} still held by {holder:?}"
    );
}
