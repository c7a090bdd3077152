//! The production [`Cluster`]: the `<db>-primary` Lease, this pod's role label, the peers and
//! failover Events through the Kubernetes API, and the peers' reports over HTTP from their
//! agents ([`peer_url`]: `http://<pod IP>:2379/state`, the IP read from the peer's pod).
//!
//! Writes: Lease create/replace with the `resourceVersion` read (optimistic concurrency), a
//! merge patch of this pod's `kubedb.com/role` label with field manager `kubedb-agent`, and
//! `events.k8s.io/v1` Events about the MSSQLServer. Reads: the Lease and this pod every round;
//! the database's pods by name (`<db>-<ordinal>`) at most every [`POD_LIST_INTERVAL`] — only
//! `get` by name, which is what the provisioner's per-database Role grants.
//!
//! Peers are reached by the pod IP in their status rather than by their DNS names: the pods are
//! read anyway, an IP needs no cluster DNS (nor waits out its negative caching while a pod is
//! re-created), and a stale IP is harmless because a report counts only when the name in it is
//! the peer's.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use operator_common::events::{EventPublisher, EventSpec};

use crate::agent::{Cluster, ClusterError, LeaseRecord, LeaseWrite, Problem};
use crate::http::Report;
use crate::mssql::decide::{Mono, PeerView, RoleLabel};

/// Field manager of every write the agent makes.
pub const FIELD_MANAGER: &str = "kubedb-agent";
/// Annotation on the Lease recording that the AG was created (value: the AG name).
pub const AG_CREATED_ANNOTATION: &str = "db-agent.kubedb.com/ag-created";
/// Annotation on the Lease naming the replica the primary role is being handed away from (a
/// planned switchover, see [`api::names::HANDOVER_FROM_ANNOTATION`]).
pub use api::names::HANDOVER_FROM_ANNOTATION;
/// Until when it holds; agents ignore it afterwards, so a request nobody withdraws cannot keep
/// a replica from being elected for ever.
pub use api::names::HANDOVER_UNTIL_ANNOTATION;
/// How often the pod list is refreshed.
pub const POD_LIST_INTERVAL: Duration = Duration::from_secs(5);
/// ... while a member listed has no IP yet.
pub const POD_LIST_INTERVAL_INCOMPLETE: Duration = Duration::from_secs(1);

/// Identity and names the Kubernetes side needs.
#[derive(Debug, Clone)]
pub struct Names {
    /// This pod.
    pub pod: String,
    /// Its namespace.
    pub namespace: String,
    /// The database object.
    pub db: String,
    /// Its kind, for Events (`MSSQLServer`, `Singlestore`).
    pub db_kind: &'static str,
    /// The value of the marker annotation: the AG name, or the bootstrapped master's host.
    pub ag: String,
    /// The marker annotation ([`AG_CREATED_ANNOTATION`], or SingleStore's
    /// [`api::names::singlestore::CLUSTER_BOOTSTRAPPED_ANNOTATION`]).
    pub marker: &'static str,
    /// The Lease (`<db>-primary`, `<db>-master`).
    pub lease: String,
    /// The StatefulSets whose pods are the members (`<set>-<ordinal>`).
    pub sets: Vec<String>,
    /// Port of the peers' agents (2379).
    pub peer_port: u16,
}

impl Names {
    /// The names of a SQL Server AG's agent: Lease `<db>-primary`, members `<db>-<n>`.
    pub fn mssql(pod: &str, namespace: &str, db: &str, ag: &str, peer_port: u16) -> Self {
        Self {
            pod: pod.to_owned(),
            namespace: namespace.to_owned(),
            db: db.to_owned(),
            db_kind: "MSSQLServer",
            ag: ag.to_owned(),
            marker: AG_CREATED_ANNOTATION,
            lease: api::names::primary_lease(db),
            sets: vec![db.to_owned()],
            peer_port,
        }
    }
}

/// `http://<ip>:<port>/state`: a peer's agent at its pod IP.
pub fn peer_url(ip: std::net::IpAddr, port: u16) -> String {
    format!("http://{}/state", std::net::SocketAddr::new(ip, port))
}

/// The Kubernetes side of a running agent; `L` is what the peers' `/state` reports carry.
pub struct KubeCluster<L = crate::mssql::decide::Local> {
    names: Names,
    leases: Api<Lease>,
    pods: Api<Pod>,
    events: EventPublisher,
    http: HttpClient<HttpConnector, Empty<Bytes>>,
    lease_duration: Duration,
    peer_timeout: Duration,
    /// The other members and their pod IPs (none while a pod has no IP).
    pod_names: Vec<(String, Option<std::net::IpAddr>)>,
    pods_listed_at: Option<Mono>,
    reports: BTreeMap<String, (L, Mono)>,
}

fn kube_error(err: kube::Error) -> ClusterError {
    match &err {
        kube::Error::Api(status) if status.code == 409 || status.code == 404 => {
            ClusterError::Conflict
        }
        kube::Error::Api(status) if status.code == 403 => ClusterError::Forbidden(err.to_string()),
        _ => ClusterError::Unavailable(err.to_string()),
    }
}

/// The Lease object after `write` by `holder`, starting from `current` (absent: a new one).
pub fn apply_write(
    current: Option<&Lease>,
    write: &LeaseWrite,
    names: &Names,
    lease_name: &str,
    duration: Duration,
    now: Timestamp,
) -> Lease {
    let mut lease = current.cloned().unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(lease_name.to_owned()),
            namespace: Some(names.namespace.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec::default()),
    });
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let seconds = i32::try_from(duration.as_secs()).unwrap_or(i32::MAX);
    match write {
        LeaseWrite::Acquire => {
            if spec.holder_identity.as_deref() != Some(&names.pod) {
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                // A handover request was about the previous holder's tenure, and is fulfilled
                // once someone else holds the Lease: left in place, it would make a later
                // holder of the same name hand the role away again until it lapses.
                if let Some(annotations) = lease.metadata.annotations.as_mut() {
                    annotations.remove(HANDOVER_FROM_ANNOTATION);
                    annotations.remove(HANDOVER_UNTIL_ANNOTATION);
                }
            }
            spec.holder_identity = Some(names.pod.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.renew_time = Some(MicroTime(now));
            spec.lease_duration_seconds = Some(seconds);
        }
        LeaseWrite::Renew => {
            spec.renew_time = Some(MicroTime(now));
            spec.lease_duration_seconds = Some(seconds);
        }
        LeaseWrite::Release => {
            spec.holder_identity = None;
            spec.acquire_time = None;
            spec.renew_time = None;
        }
        LeaseWrite::HandOver => {
            spec.holder_identity = None;
            spec.acquire_time = None;
            spec.renew_time = None;
            let until = now
                .checked_add(
                    k8s_openapi::jiff::SignedDuration::try_from(duration).unwrap_or_default(),
                )
                .unwrap_or(now);
            let annotations = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
            annotations.insert(HANDOVER_FROM_ANNOTATION.to_owned(), names.pod.clone());
            annotations.insert(HANDOVER_UNTIL_ANNOTATION.to_owned(), until.to_string());
        }
        LeaseWrite::MarkAgCreated => {
            lease
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(names.marker.to_owned(), names.ag.clone());
        }
    }
    lease
}

/// What the agent needs of a Lease object; `marker` is the marker annotation's name.
pub fn record(lease: &Lease, marker: &str) -> LeaseRecord {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseRecord {
        holder: spec.holder_identity.filter(|h| !h.is_empty()),
        version: lease.metadata.resource_version.clone().unwrap_or_default(),
        duration: Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        ),
        ag_created: lease
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(marker)),
        handover: handover(lease),
    }
}

/// The handover the Lease's annotations request, if both are present and the time parses.
fn handover(lease: &Lease) -> Option<(String, Timestamp)> {
    let annotations = lease.metadata.annotations.as_ref()?;
    let from = annotations
        .get(HANDOVER_FROM_ANNOTATION)
        .filter(|f| !f.is_empty())?;
    let until = annotations.get(HANDOVER_UNTIL_ANNOTATION)?.parse().ok()?;
    Some((from.clone(), until))
}

impl<L: serde::de::DeserializeOwned + Clone> KubeCluster<L> {
    /// The Kubernetes side for `names`, with the Lease duration to write and the bound on a
    /// peer's `/state` request.
    pub fn new(
        client: kube::Client,
        names: Names,
        lease_duration: Duration,
        peer_timeout: Duration,
    ) -> Self {
        let events = EventPublisher::new(client.clone(), FIELD_MANAGER, Some(names.pod.clone()));
        Self {
            leases: Api::namespaced(client.clone(), &names.namespace),
            pods: Api::namespaced(client, &names.namespace),
            events,
            http: HttpClient::builder(TokioExecutor::new()).build_http(),
            names,
            lease_duration,
            peer_timeout,
            pod_names: Vec::new(),
            pods_listed_at: None,
            reports: BTreeMap::new(),
        }
    }

    fn lease_name(&self) -> String {
        self.names.lease.clone()
    }

    async fn fetch_report(&self, ip: Option<std::net::IpAddr>) -> Result<Report<L>, String> {
        let ip = ip.ok_or_else(|| "the pod has no IP yet".to_owned())?;
        let url = peer_url(ip, self.names.peer_port);
        let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let fetch = async {
            let response = self.http.get(uri).await.map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("{url}: HTTP {}", response.status()));
            }
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            serde_json::from_slice::<Report<L>>(&body).map_err(|e| format!("{url}: {e}"))
        };
        tokio::time::timeout(self.peer_timeout, fetch)
            .await
            .map_err(|_| format!("{url}: no answer within {:?}", self.peer_timeout))?
    }
}

/// Ordinals probed past the last pod found before the member list is considered complete.
const MISSING_ORDINALS_TOLERATED: usize = 3;
/// The highest ordinal probed.
const MAX_ORDINAL: usize = 256;

impl<L: serde::de::DeserializeOwned + Clone> KubeCluster<L> {
    /// The petsets' pods, `<set>-0`, `<set>-1`, ... read one by one by name. A list with a label
    /// selector would need `list` on every pod of the namespace; the provisioner's Role grants
    /// the agent its own database's pods by name only. Probing stops at a name the Role does not
    /// grant (403, past the replicas the Role was rendered for) or after a few missing ordinals
    /// in a row (a pod being re-created does not end the list).
    async fn member_pods(&self) -> Result<Vec<(String, Option<std::net::IpAddr>)>, kube::Error> {
        let mut members = Vec::new();
        for set in &self.names.sets {
            self.set_pods(set, &mut members).await?;
        }
        Ok(members)
    }

    async fn set_pods(
        &self,
        set: &str,
        members: &mut Vec<(String, Option<std::net::IpAddr>)>,
    ) -> Result<(), kube::Error> {
        let mut missing = 0;
        for ordinal in 0..MAX_ORDINAL {
            let name = format!("{set}-{ordinal}");
            match self.pods.get_opt(&name).await {
                Ok(Some(pod)) => {
                    let ip = pod
                        .status
                        .and_then(|s| s.pod_ip)
                        .and_then(|ip| ip.parse().ok());
                    members.push((name, ip));
                    missing = 0;
                }
                Ok(None) => {
                    missing += 1;
                    if missing >= MISSING_ORDINALS_TOLERATED {
                        break;
                    }
                }
                Err(kube::Error::Api(status)) if status.code == 403 => break,
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

/// Reads `key` of secret `name`.
pub async fn secret_value(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> anyhow::Result<String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets.get(name).await?;
    let value = secret
        .data
        .and_then(|mut d| d.remove(key))
        .ok_or_else(|| anyhow::anyhow!("secret {name} has no key {key}"))?;
    Ok(String::from_utf8(value.0)?)
}

impl<L: serde::de::DeserializeOwned + Clone> KubeCluster<L> {
    /// Reads the Lease (`None`: it does not exist).
    pub async fn get_lease(&mut self) -> Result<Option<LeaseRecord>, ClusterError> {
        let lease = self
            .leases
            .get_opt(&self.lease_name())
            .await
            .map_err(kube_error)?;
        Ok(lease.as_ref().map(|l| record(l, self.names.marker)))
    }

    /// Writes the Lease as `write` says, if it is still at `expected` (`None`: absent).
    pub async fn put_lease(
        &mut self,
        write: LeaseWrite,
        expected: Option<&LeaseRecord>,
    ) -> Result<(), ClusterError> {
        let name = self.lease_name();
        let current = match expected {
            Some(expected) => {
                let current = self.leases.get_opt(&name).await.map_err(kube_error)?;
                match current {
                    Some(lease)
                        if lease.metadata.resource_version.as_deref()
                            == Some(expected.version.as_str()) =>
                    {
                        Some(lease)
                    }
                    _ => return Err(ClusterError::Conflict),
                }
            }
            None => None,
        };
        let lease = apply_write(
            current.as_ref(),
            &write,
            &self.names,
            &name,
            self.lease_duration,
            Timestamp::now(),
        );
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        // Replace carries the resourceVersion read: the API server refuses it (409) if
        // anyone wrote in between.
        match current {
            Some(_) => self.leases.replace(&name, &params, &lease).await,
            None => self.leases.create(&params, &lease).await,
        }
        .map(|_| ())
        .map_err(kube_error)
    }

    /// This pod's `kubedb.com/role` label, as written.
    pub async fn get_label(&mut self) -> Result<Option<String>, ClusterError> {
        let pod = self
            .pods
            .get(&self.names.pod)
            .await
            .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
        Ok(pod
            .metadata
            .labels
            .and_then(|mut l| l.remove(api::names::LABEL_ROLE)))
    }

    /// Sets or removes this pod's role label.
    pub async fn put_label(&mut self, label: Option<&str>) -> Result<(), ClusterError> {
        let patch = serde_json::json!({
            "metadata": { "labels": { api::names::LABEL_ROLE: label } }
        });
        self.pods
            .patch(
                &self.names.pod,
                &PatchParams {
                    field_manager: Some(FIELD_MANAGER.to_owned()),
                    ..PatchParams::default()
                },
                &Patch::Merge(&patch),
            )
            .await
            .map(|_| ())
            .map_err(kube_error)
    }

    /// The other members and their agents' last reports with their age.
    pub async fn member_reports(&mut self, now: Mono) -> Vec<(String, Option<(L, Duration)>)> {
        // Sooner while a member has no IP yet (a pod just created or re-created).
        let interval = if self.pod_names.iter().any(|(_, ip)| ip.is_none()) {
            POD_LIST_INTERVAL_INCOMPLETE
        } else {
            POD_LIST_INTERVAL
        };
        let due = self
            .pods_listed_at
            .is_none_or(|at| now.saturating_sub(at) >= interval);
        if due {
            match self.member_pods().await {
                Ok(members) => {
                    self.pod_names = members
                        .into_iter()
                        .filter(|(n, _)| *n != self.names.pod)
                        .collect();
                    let names = &self.pod_names;
                    self.reports
                        .retain(|name, _| names.iter().any(|(n, _)| n == name));
                    self.pods_listed_at = Some(now);
                }
                Err(err) => tracing::warn!(error = %err, "cannot read the database's pods"),
            }
        }
        let this = &*self;
        let fetches = this
            .pod_names
            .iter()
            .map(|(pod, ip)| async move { (pod.clone(), this.fetch_report(*ip).await) });
        let results = futures::future::join_all(fetches).await;
        // Fetched during this round: the round's time is the answer's time.
        let fetched_at = now;
        for (pod, result) in results {
            match result {
                Ok(report) if report.name == pod => {
                    self.reports.insert(pod, (report.local, fetched_at));
                }
                Ok(report) => {
                    tracing::warn!(pod, answered = %report.name, "a peer answered with another name");
                }
                Err(err) => tracing::debug!(pod, error = %err, "no report"),
            }
        }
        self.pod_names
            .iter()
            .map(|(pod, _)| {
                let report = self
                    .reports
                    .get(pod)
                    .map(|(local, at)| (local.clone(), now.saturating_sub(*at)));
                (pod.clone(), report)
            })
            .collect()
    }

    /// Records a failover on the database (a Normal Event), best effort.
    pub async fn publish_failover(&mut self, previous: Option<&str>, message: &str) {
        let reference = self.database_reference();
        let note = match previous {
            Some(p) => format!("{message}; the Lease was held by {p}"),
            None => message.to_owned(),
        };
        self.events
            .publish_ref(&reference, EventSpec::normal("Failover", "Promote", note))
            .await;
    }

    /// Reports a problem on the database (a Warning Event), best effort.
    pub async fn publish_warning(&mut self, problem: &Problem) {
        let reference = self.database_reference();
        self.events
            .publish_ref(
                &reference,
                EventSpec::warning(problem.reason, problem.action, problem.message.clone()),
            )
            .await;
    }

    /// The database the Events are about.
    fn database_reference(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("kubedb.com/v1alpha2".into()),
            kind: Some(self.names.db_kind.into()),
            name: Some(self.names.db.clone()),
            namespace: Some(self.names.namespace.clone()),
            ..ObjectReference::default()
        }
    }
}

impl Cluster for KubeCluster {
    async fn read_lease(&mut self) -> Result<Option<LeaseRecord>, ClusterError> {
        self.get_lease().await
    }

    async fn write_lease(
        &mut self,
        write: LeaseWrite,
        expected: Option<&LeaseRecord>,
    ) -> Result<(), ClusterError> {
        self.put_lease(write, expected).await
    }

    async fn own_label(&mut self) -> Result<Option<RoleLabel>, ClusterError> {
        Ok(self.get_label().await?.and_then(|v| RoleLabel::parse(&v)))
    }

    async fn set_label(&mut self, label: Option<RoleLabel>) -> Result<(), ClusterError> {
        self.put_label(label.map(RoleLabel::as_str)).await
    }

    async fn peers(&mut self, now: Mono) -> Vec<PeerView> {
        self.member_reports(now)
            .await
            .into_iter()
            .map(|(name, report)| PeerView {
                name,
                age: report.as_ref().map(|(_, age)| *age),
                state: report.map(|(local, _)| local),
            })
            .collect()
    }

    async fn publish(&mut self, _report: &Report, _now: Mono) {
        // Peers read it from this agent's /state.
    }

    async fn failover_event(&mut self, previous: Option<&str>, message: &str) {
        self.publish_failover(previous, message).await;
    }

    async fn warning_event(&mut self, problem: &Problem) {
        self.publish_warning(problem).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names::mssql("ag-1", "demo", "ag", "agx", 2379)
    }

    #[test]
    fn peers_are_reached_at_their_pod_ip() {
        assert_eq!(
            peer_url("10.1.2.3".parse().unwrap(), names().peer_port),
            "http://10.1.2.3:2379/state"
        );
        assert_eq!(
            peer_url("fd00::7".parse().unwrap(), 2379),
            "http://[fd00::7]:2379/state"
        );
    }

    #[test]
    fn lease_writes() {
        let now = Timestamp::from_second(1_000).unwrap();
        let ten = Duration::from_secs(10);
        let created = apply_write(None, &LeaseWrite::Acquire, &names(), "ag-primary", ten, now);
        let spec = created.spec.clone().unwrap();
        assert_eq!(created.metadata.name.as_deref(), Some("ag-primary"));
        assert_eq!(spec.holder_identity.as_deref(), Some("ag-1"));
        assert_eq!(spec.lease_duration_seconds, Some(10));
        assert_eq!(spec.lease_transitions, Some(1));
        assert_eq!(spec.renew_time, Some(MicroTime(now)));

        let again = apply_write(
            Some(&created),
            &LeaseWrite::Acquire,
            &names(),
            "ag-primary",
            ten,
            now,
        );
        assert_eq!(
            again.spec.unwrap().lease_transitions,
            Some(1),
            "same holder"
        );

        let later = Timestamp::from_second(1_002).unwrap();
        let renewed = apply_write(
            Some(&created),
            &LeaseWrite::Renew,
            &names(),
            "ag-primary",
            ten,
            later,
        );
        assert_eq!(
            renewed.spec.as_ref().unwrap().renew_time,
            Some(MicroTime(later))
        );
        assert_eq!(
            renewed.spec.as_ref().unwrap().acquire_time,
            Some(MicroTime(now))
        );

        let marked = apply_write(
            Some(&renewed),
            &LeaseWrite::MarkAgCreated,
            &names(),
            "ag-primary",
            ten,
            later,
        );
        let released = apply_write(
            Some(&marked),
            &LeaseWrite::Release,
            &names(),
            "ag-primary",
            ten,
            later,
        );
        let mut with_version = released.clone();
        with_version.metadata.resource_version = Some("42".into());
        let r = record(&with_version, AG_CREATED_ANNOTATION);
        assert_eq!(r.holder, None);
        assert!(r.ag_created, "the marker survives a release");
        assert_eq!(r.version, "42");
        assert_eq!(r.duration, ten);
        assert_eq!(
            released.metadata.annotations.unwrap()[AG_CREATED_ANNOTATION],
            "agx"
        );
    }

    #[test]
    fn a_new_holder_clears_the_handover_its_predecessor_was_asked_for() {
        let now = Timestamp::from_second(1_000).unwrap();
        let ten = Duration::from_secs(10);
        let a = Names::mssql("ag-0", "demo", "ag", "agx", 2379);
        let b = Names::mssql("ag-1", "demo", "ag", "agx", 2379);
        let held = apply_write(None, &LeaseWrite::Acquire, &a, "ag-primary", ten, now);
        // The holder hands over (a stopping primary; the ops-manager's request looks the same).
        let handed = apply_write(
            Some(&held),
            &LeaseWrite::HandOver,
            &a,
            "ag-primary",
            ten,
            now,
        );
        assert!(record(&handed, AG_CREATED_ANNOTATION).handover.is_some());
        // Renewals and markers by the same holder keep a request.
        let renewed = apply_write(
            Some(&handed),
            &LeaseWrite::Renew,
            &a,
            "ag-primary",
            ten,
            now,
        );
        assert!(record(&renewed, AG_CREATED_ANNOTATION).handover.is_some());
        // The successor takes the Lease: the request is fulfilled and goes.
        let taken = apply_write(
            Some(&handed),
            &LeaseWrite::Acquire,
            &b,
            "ag-primary",
            ten,
            now,
        );
        assert_eq!(record(&taken, AG_CREATED_ANNOTATION).handover, None);
        // So the old holder, taking it back later, is not asked to hand over again.
        let back = apply_write(
            Some(&taken),
            &LeaseWrite::Acquire,
            &a,
            "ag-primary",
            ten,
            now,
        );
        assert_eq!(record(&back, AG_CREATED_ANNOTATION).handover, None);
    }

    #[test]
    fn an_empty_holder_is_no_holder() {
        let lease = Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(String::new()),
                ..LeaseSpec::default()
            }),
        };
        assert_eq!(record(&lease, AG_CREATED_ANNOTATION).holder, None);
    }
}
