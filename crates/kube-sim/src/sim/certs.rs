//! cert-manager stand-in: serves `cert-manager.io/v1` Issuer, ClusterIssuer and Certificate
//! (CRDs installed at start) and issues Certificates from `selfSigned` and `ca` issuers into
//! `kubernetes.io/tls` Secrets (`tls.crt`, `tls.key`, `ca.crt`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::{Timestamp, ToSpan};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde_json::{Value, json};

use super::util::{stable_hash, time_at};

pub const GROUP: &str = "cert-manager.io";
/// Annotation on issued Secrets: hash of what they were issued from.
pub const SPEC_HASH_ANNOTATION: &str = "sim.kube-sim.dev/issued-from";

pub fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: GROUP.to_owned(),
        version: "v1".to_owned(),
        api_version: format!("{GROUP}/v1"),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
    }
}

/// CRD with an open schema (spec and status preserve unknown fields) and a status subresource.
pub fn crd(
    kind: &str,
    plural: &str,
    singular: &str,
    namespaced: bool,
    short_names: &[&str],
) -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural, "singular": singular,
                      "shortNames": short_names, "categories": ["cert-manager"]},
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }
                }}
            }]
        }
    }))
    .expect("static CRD is valid")
}

/// Installs the three CRDs (existing ones are left alone).
pub async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [
        crd("Issuer", "issuers", "issuer", true, &[]),
        crd(
            "ClusterIssuer",
            "clusterissuers",
            "clusterissuer",
            false,
            &[],
        ),
        crd(
            "Certificate",
            "certificates",
            "certificate",
            true,
            &["cert", "certs"],
        ),
    ] {
        match api.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e).with_context(|| format!("creating CRD {}", crd.name_any())),
        }
    }
    Ok(())
}

/// PEM material issued for a Certificate.
#[derive(Debug)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

/// The signer of a Certificate.
pub enum Signer<'a> {
    SelfSigned,
    Ca { cert_pem: &'a str, key_pem: &'a str },
}

fn parse_go_duration(s: &str) -> Option<Duration> {
    super::options::parse_duration(s).ok()
}

fn to_ymd(ts: Timestamp) -> (i32, u8, u8) {
    let date = ts.to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC).date();
    (i32::from(date.year()), date.month() as u8, date.day() as u8)
}

/// Issues a certificate for a Certificate spec. Validity is whole days (from the start of
/// today, UTC, to the day `spec.duration` after, default 90 days).
pub fn issue(spec: &Value, signer: &Signer<'_>, now: Timestamp) -> anyhow::Result<Issued> {
    let strings = |key: &str| -> Vec<String> {
        spec[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut params = CertificateParams::new(strings("dnsNames")).context("invalid dnsNames")?;
    for ip in strings("ipAddresses") {
        params.subject_alt_names.push(SanType::IpAddress(
            ip.parse().with_context(|| format!("invalid IP {ip}"))?,
        ));
    }
    for uri in strings("uris") {
        params
            .subject_alt_names
            .push(SanType::URI(uri.try_into().context("invalid URI")?));
    }
    for email in strings("emailAddresses") {
        params.subject_alt_names.push(SanType::Rfc822Name(
            email.try_into().context("invalid email")?,
        ));
    }
    let mut dn = DistinguishedName::new();
    if let Some(cn) = spec["commonName"].as_str() {
        dn.push(DnType::CommonName, cn);
    }
    let subject = &spec["subject"];
    for (key, dn_type) in [
        ("organizations", DnType::OrganizationName),
        ("organizationalUnits", DnType::OrganizationalUnitName),
        ("countries", DnType::CountryName),
        ("localities", DnType::LocalityName),
        ("provinces", DnType::StateOrProvinceName),
    ] {
        for value in subject[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            dn.push(dn_type.clone(), value);
        }
    }
    params.distinguished_name = dn;
    let is_ca = spec["isCA"].as_bool().unwrap_or(false);
    if is_ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::CrlSign,
        ];
    } else {
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
    }
    let duration = spec["duration"]
        .as_str()
        .and_then(parse_go_duration)
        .unwrap_or(Duration::from_secs(90 * 24 * 3600));
    let start = now;
    let end = now
        .checked_add(
            i64::try_from(duration.as_secs())
                .unwrap_or(i64::MAX / 2)
                .seconds(),
        )
        .context("certificate duration too long")?;
    let (y, m, d) = to_ymd(start);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = to_ymd(end);
    params.not_after = rcgen::date_time_ymd(y, m, d);
    let not_before =
        Timestamp::from_second(start.as_second() - start.as_second().rem_euclid(86_400))
            .unwrap_or(start);
    let not_after =
        Timestamp::from_second(end.as_second() - end.as_second().rem_euclid(86_400)).unwrap_or(end);

    let key = KeyPair::generate().context("generating a key")?;
    let (cert_pem, ca_pem) = match signer {
        Signer::SelfSigned => {
            let cert = params.self_signed(&key).context("self-signing")?;
            let pem = cert.pem();
            (pem.clone(), pem)
        }
        Signer::Ca { cert_pem, key_pem } => {
            let ca_key = KeyPair::from_pem(key_pem).context("parsing the CA key (tls.key)")?;
            let issuer = Issuer::from_ca_cert_pem(cert_pem, ca_key)
                .context("parsing the CA certificate (tls.crt)")?;
            let cert = params
                .signed_by(&key, &issuer)
                .context("signing with the CA")?;
            (cert.pem(), (*cert_pem).to_owned())
        }
    };
    Ok(Issued {
        cert_pem,
        key_pem: key.serialize_pem(),
        ca_pem,
        not_before,
        not_after,
    })
}

fn ready_condition(
    ok: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    previous: &Value,
    now: Timestamp,
) -> Value {
    let status = if ok { "True" } else { "False" };
    let since = previous["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready" && c["status"] == status)
        .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_owned))
        .unwrap_or_else(|| now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    json!({"type": "Ready", "status": status, "reason": reason, "message": message,
           "lastTransitionTime": since, "observedGeneration": generation})
}

fn same_condition(previous: &Value, wanted: &Value) -> bool {
    previous["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            c["type"] == wanted["type"]
                && c["status"] == wanted["status"]
                && c["reason"] == wanted["reason"]
                && c["message"] == wanted["message"]
                && c["observedGeneration"] == wanted["observedGeneration"]
        })
}

/// The cert-manager controller.
pub struct Controller {
    pub client: Client,
    pub issuers: Store<DynamicObject>,
    pub cluster_issuers: Store<DynamicObject>,
    pub certificates: Store<DynamicObject>,
    pub secrets: Store<Secret>,
    /// Namespace holding the CA secrets of ClusterIssuers (cert-manager's `--cluster-resource-namespace`).
    pub cluster_resource_namespace: String,
    /// The inputs (the Certificate's, its secret's and the issuers' resourceVersions) each
    /// Certificate was last handled with, by uid: a pass skips the unchanged ones.
    pub handled: std::collections::HashMap<String, String>,
}

enum IssuerState {
    NotFound,
    NotReady(String),
    Ready(IssuerKind),
}

enum IssuerKind {
    SelfSigned,
    Ca { cert_pem: String, key_pem: String },
}

impl Controller {
    fn secret(&self, ns: &str, name: &str) -> Option<std::sync::Arc<Secret>> {
        self.secrets.get(&ObjectRef::new(name).within(ns))
    }

    fn issuer_state(&self, issuer: &DynamicObject, secret_ns: &str) -> IssuerState {
        let spec = &issuer.data["spec"];
        if spec.get("selfSigned").is_some() {
            return IssuerState::Ready(IssuerKind::SelfSigned);
        }
        if let Some(secret_name) = spec["ca"]["secretName"].as_str() {
            let Some(secret) = self.secret(secret_ns, secret_name) else {
                return IssuerState::NotReady(format!(
                    "Error getting keypair for CA issuer: secret \"{secret_name}\" not found"
                ));
            };
            let data = secret.data.clone().unwrap_or_default();
            let get = |k: &str| {
                data.get(k)
                    .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            };
            return match (get("tls.crt"), get("tls.key")) {
                (Some(cert_pem), Some(key_pem)) => {
                    IssuerState::Ready(IssuerKind::Ca { cert_pem, key_pem })
                }
                _ => IssuerState::NotReady(format!(
                    "secret \"{secret_name}\" lacks tls.crt or tls.key"
                )),
            };
        }
        IssuerState::NotReady("kube-sim supports only selfSigned and ca issuers".to_owned())
    }

    async fn patch_status(
        &self,
        resource: &ApiResource,
        ns: Option<&str>,
        name: &str,
        status: Value,
    ) -> anyhow::Result<()> {
        let api: Api<DynamicObject> = match ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        };
        match api
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": status })),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn pass_once(&mut self) -> anyhow::Result<Option<Duration>> {
        let now = Timestamp::now();
        // Issuer conditions.
        for (store, resource) in [
            (&self.issuers, resource("Issuer", "issuers")),
            (
                &self.cluster_issuers,
                resource("ClusterIssuer", "clusterissuers"),
            ),
        ] {
            for issuer in store.state() {
                let ns = issuer.namespace();
                let secret_ns = ns
                    .clone()
                    .unwrap_or_else(|| self.cluster_resource_namespace.clone());
                let (ok, reason, message) = match self.issuer_state(&issuer, &secret_ns) {
                    IssuerState::Ready(IssuerKind::SelfSigned) => (true, "IsReady", String::new()),
                    IssuerState::Ready(IssuerKind::Ca { .. }) => {
                        (true, "KeyPairVerified", "Signing CA verified".to_owned())
                    }
                    IssuerState::NotReady(m) => (false, "ErrGetKeyPair", m),
                    IssuerState::NotFound => continue,
                };
                let previous = &issuer.data["status"];
                let cond = ready_condition(
                    ok,
                    reason,
                    &message,
                    issuer.metadata.generation,
                    previous,
                    now,
                );
                if !same_condition(previous, &cond) {
                    self.patch_status(
                        &resource,
                        ns.as_deref(),
                        &issuer.name_any(),
                        json!({ "conditions": [cond] }),
                    )
                    .await?;
                }
            }
        }
        // Certificates: only those whose inputs changed since they were last handled.
        let cert_resource = resource("Certificate", "certificates");
        let issuers = self.issuers_fingerprint();
        let certificates = self.certificates.state();
        let live: std::collections::HashSet<String> =
            certificates.iter().filter_map(|c| c.uid()).collect();
        self.handled.retain(|uid, _| live.contains(uid));
        for cert in certificates {
            let uid = cert.uid().unwrap_or_default();
            let secret_rv = cert.data["spec"]["secretName"]
                .as_str()
                .and_then(|name| self.secret(&cert.namespace().unwrap_or_default(), name))
                .and_then(|s| s.resource_version())
                .unwrap_or_default();
            let inputs = format!(
                "{}|{secret_rv}|{issuers}",
                cert.resource_version().unwrap_or_default()
            );
            if self.handled.get(&uid) == Some(&inputs) {
                continue;
            }
            self.certificate(&cert, &cert_resource, now).await?;
            self.handled.insert(uid, inputs);
        }
        Ok(None)
    }

    /// The resourceVersions of every Issuer and ClusterIssuer and of their CA secrets: a change
    /// of any of them re-evaluates every Certificate (there are few issuers).
    fn issuers_fingerprint(&self) -> String {
        let mut parts = Vec::new();
        for (store, cluster) in [(&self.issuers, false), (&self.cluster_issuers, true)] {
            for issuer in store.state() {
                let secret_ns = if cluster {
                    self.cluster_resource_namespace.clone()
                } else {
                    issuer.namespace().unwrap_or_default()
                };
                let ca_rv = issuer.data["spec"]["ca"]["secretName"]
                    .as_str()
                    .and_then(|name| self.secret(&secret_ns, name))
                    .and_then(|s| s.resource_version())
                    .unwrap_or_default();
                parts.push(format!(
                    "{}:{}:{ca_rv}",
                    issuer.uid().unwrap_or_default(),
                    issuer.resource_version().unwrap_or_default()
                ));
            }
        }
        parts.sort_unstable();
        parts.join(",")
    }

    /// Sets a Certificate's Ready condition to False with `reason` (written only when it changes).
    async fn not_ready(
        &self,
        cert: &DynamicObject,
        cert_resource: &ApiResource,
        reason: &str,
        message: &str,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let previous = &cert.data["status"];
        let cond = ready_condition(
            false,
            reason,
            message,
            cert.metadata.generation,
            previous,
            now,
        );
        if !same_condition(previous, &cond) {
            self.patch_status(
                cert_resource,
                cert.namespace().as_deref(),
                &cert.name_any(),
                json!({ "conditions": [cond] }),
            )
            .await?;
        }
        Ok(())
    }

    /// Issues (or re-issues) one Certificate's secret when it is missing or outdated and keeps its
    /// Ready condition.
    async fn certificate(
        &self,
        cert: &DynamicObject,
        cert_resource: &ApiResource,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let ns = cert.namespace().unwrap_or_default();
        let name = cert.name_any();
        let spec = &cert.data["spec"];
        let previous = &cert.data["status"];
        let Some(secret_name) = spec["secretName"].as_str() else {
            return Ok(());
        };
        let issuer_name = spec["issuerRef"]["name"].as_str().unwrap_or_default();
        let cluster = spec["issuerRef"]["kind"].as_str() == Some("ClusterIssuer");
        let issuer = if cluster {
            self.cluster_issuers
                .state()
                .into_iter()
                .find(|i| i.name_any() == issuer_name)
        } else {
            self.issuers.state().into_iter().find(|i| {
                i.name_any() == issuer_name && i.namespace().as_deref() == Some(ns.as_str())
            })
        };
        let state = match &issuer {
            None => IssuerState::NotFound,
            Some(i) => {
                let secret_ns = if cluster {
                    self.cluster_resource_namespace.clone()
                } else {
                    ns.clone()
                };
                self.issuer_state(i, &secret_ns)
            }
        };
        let kind = match state {
            IssuerState::Ready(kind) => kind,
            IssuerState::NotFound | IssuerState::NotReady(_) => {
                let message = format!("Issuer {issuer_name} is not found or not ready");
                return self
                    .not_ready(cert, cert_resource, "IssuerNotReady", &message, now)
                    .await;
            }
        };
        let ca_fingerprint = match &kind {
            IssuerKind::SelfSigned => String::from("self"),
            IssuerKind::Ca { cert_pem, .. } => stable_hash(cert_pem),
        };
        let wanted_hash = stable_hash(&json!({ "spec": spec, "issuer": ca_fingerprint }));
        let existing = self.secret(&ns, secret_name);
        let up_to_date = existing.as_ref().is_some_and(|s| {
            s.annotations().get(SPEC_HASH_ANNOTATION) == Some(&wanted_hash)
                && s.data
                    .as_ref()
                    .is_some_and(|d| d.contains_key("tls.crt") && d.contains_key("tls.key"))
        });
        let mut status_patch = serde_json::Map::new();
        if !up_to_date {
            let signer = match &kind {
                IssuerKind::SelfSigned => Signer::SelfSigned,
                IssuerKind::Ca { cert_pem, key_pem } => Signer::Ca { cert_pem, key_pem },
            };
            let issued = match issue(spec, &signer, now) {
                Ok(issued) => issued,
                Err(error) => {
                    let message = format!("{error:#}");
                    return self
                        .not_ready(cert, cert_resource, "Failed", &message, now)
                        .await;
                }
            };
            self.write_secret(
                cert,
                &ns,
                secret_name,
                &wanted_hash,
                existing.as_deref(),
                &issued,
            )
            .await?;
            let revision = previous["revision"].as_i64().unwrap_or(0) + 1;
            status_patch.insert("revision".into(), json!(revision));
            status_patch.insert("notBefore".into(), json!(time_at(issued.not_before)));
            status_patch.insert("notAfter".into(), json!(time_at(issued.not_after)));
            let renewal = Timestamp::from_second(
                issued.not_after.as_second()
                    - (issued.not_after.as_second() - issued.not_before.as_second()) / 3,
            )
            .unwrap_or(issued.not_after);
            status_patch.insert("renewalTime".into(), json!(time_at(renewal)));
        }
        let cond = ready_condition(
            true,
            "Ready",
            "Certificate is up to date and has not expired",
            cert.metadata.generation,
            previous,
            now,
        );
        if !up_to_date || !same_condition(previous, &cond) {
            status_patch.insert("conditions".into(), json!([cond]));
            self.patch_status(cert_resource, Some(&ns), &name, Value::Object(status_patch))
                .await?;
        }
        Ok(())
    }

    async fn write_secret(
        &self,
        cert: &DynamicObject,
        ns: &str,
        secret_name: &str,
        hash: &str,
        existing: Option<&Secret>,
        issued: &Issued,
    ) -> anyhow::Result<()> {
        let template = &cert.data["spec"]["secretTemplate"];
        let to_map = |v: &Value| -> BTreeMap<String, String> {
            v.as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut annotations = existing
            .map(|s| s.annotations().clone())
            .unwrap_or_default();
        annotations.extend(to_map(&template["annotations"]));
        annotations.insert("cert-manager.io/certificate-name".into(), cert.name_any());
        annotations.insert(
            "cert-manager.io/issuer-name".into(),
            cert.data["spec"]["issuerRef"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        annotations.insert(
            "cert-manager.io/issuer-kind".into(),
            cert.data["spec"]["issuerRef"]["kind"]
                .as_str()
                .unwrap_or("Issuer")
                .to_owned(),
        );
        annotations.insert("cert-manager.io/issuer-group".into(), GROUP.into());
        annotations.insert(SPEC_HASH_ANNOTATION.into(), hash.to_owned());
        let mut labels = existing.map(|s| s.labels().clone()).unwrap_or_default();
        labels.extend(to_map(&template["labels"]));
        labels.insert("controller.cert-manager.io/fao".into(), "true".into());
        let mut data = existing.and_then(|s| s.data.clone()).unwrap_or_default();
        data.insert(
            "tls.crt".into(),
            ByteString(issued.cert_pem.clone().into_bytes()),
        );
        data.insert(
            "tls.key".into(),
            ByteString(issued.key_pem.clone().into_bytes()),
        );
        data.insert(
            "ca.crt".into(),
            ByteString(issued.ca_pem.clone().into_bytes()),
        );
        data.extend(keystore_entries(&cert.data["spec"]));
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(secret_name.to_owned()),
                namespace: Some(ns.to_owned()),
                labels: Some(labels),
                annotations: Some(annotations),
                resource_version: existing.and_then(|s| s.resource_version()),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".to_owned()),
            data: Some(data),
            ..Secret::default()
        };
        let result = match existing {
            Some(_) => api
                .replace(secret_name, &PostParams::default(), &secret)
                .await
                .map(|_| ()),
            None => api
                .create(&PostParams::default(), &secret)
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => Ok(()),
            // A stale cache: the next pass sees the current Secret.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The entries cert-manager adds for `spec.keystores` (`keystore.p12` and `truststore.p12` for
/// `pkcs12.create: true`, `keystore.jks` and `truststore.jks` for `jks.create: true`). The
/// stand-in does not build keystores: each entry holds a one-line marker, not an archive, so the
/// names the pods mount exist and nothing here pretends to be a PKCS #12 or JKS file.
pub fn keystore_entries(spec: &Value) -> BTreeMap<String, ByteString> {
    let mut entries = BTreeMap::new();
    for (kind, ext) in [("pkcs12", "p12"), ("jks", "jks")] {
        if spec["keystores"][kind]["create"].as_bool() == Some(true) {
            for store in ["keystore", "truststore"] {
                entries.insert(
                    format!("{store}.{ext}"),
                    ByteString(
                        format!(
                            "kube-sim cert-manager stand-in: placeholder for a {kind} {store}\n"
                        )
                        .into_bytes(),
                    ),
                );
            }
        }
    }
    entries
}

impl super::informers::Pass for Controller {
    async fn pass(&mut self) -> anyhow::Result<Option<Duration>> {
        self.pass_once().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pem: &str) -> x509_parser::certificate::X509Certificate<'static> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let der: &'static [u8] = Box::leak(pem.contents.into_boxed_slice());
        x509_parser::parse_x509_certificate(der).unwrap().1
    }

    #[test]
    fn keystores_are_named_as_cert_manager_names_them() {
        assert!(keystore_entries(&json!({})).is_empty());
        let p12 = keystore_entries(&json!({"keystores": {"pkcs12": {"create": true}}}));
        assert_eq!(
            p12.keys().collect::<Vec<_>>(),
            ["keystore.p12", "truststore.p12"]
        );
        let both = keystore_entries(
            &json!({"keystores": {"pkcs12": {"create": false}, "jks": {"create": true}}}),
        );
        assert_eq!(
            both.keys().collect::<Vec<_>>(),
            ["keystore.jks", "truststore.jks"]
        );
    }

    #[test]
    fn self_signed_then_ca_signed() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let ca_spec = json!({"commonName": "sim-ca", "isCA": true, "duration": "8760h"});
        let ca = issue(&ca_spec, &Signer::SelfSigned, now).unwrap();
        let ca_cert = parse(&ca.cert_pem);
        assert_eq!(ca_cert.subject().to_string(), "CN=sim-ca");
        assert!(ca_cert.is_ca());
        assert_eq!(ca.ca_pem, ca.cert_pem);

        let leaf_spec = json!({"commonName": "db", "dnsNames": ["db.ns.svc", "db"], "ipAddresses": ["127.0.0.1"],
                               "subject": {"organizations": ["kubedb"], "organizationalUnits": ["server"]}});
        let leaf = issue(
            &leaf_spec,
            &Signer::Ca {
                cert_pem: &ca.cert_pem,
                key_pem: &ca.key_pem,
            },
            now,
        )
        .unwrap();
        let cert = parse(&leaf.cert_pem);
        assert_eq!(cert.issuer().to_string(), "CN=sim-ca");
        assert!(cert.subject().to_string().contains("O=kubedb"));
        assert!(!cert.is_ca());
        let sans = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .len();
        assert_eq!(sans, 3);
        assert_eq!(leaf.ca_pem, ca.cert_pem);
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        let validity = cert.validity();
        assert!(validity.not_before.timestamp() <= now.as_second());
        assert!(validity.not_after.timestamp() > now.as_second() + 80 * 86_400);
    }

    #[test]
    fn rejects_bad_input() {
        let now = Timestamp::now();
        assert!(
            issue(
                &json!({"ipAddresses": ["not-an-ip"]}),
                &Signer::SelfSigned,
                now
            )
            .is_err()
        );
        assert!(
            issue(
                &json!({}),
                &Signer::Ca {
                    cert_pem: "junk",
                    key_pem: "junk"
                },
                now
            )
            .is_err()
        );
    }
}
