//! The desired state of a database's children, produced by the pure builders in [`crate::build`]
//! and applied by the reconciler.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use operator_common::apply::needs_apply;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::build::certificate::Certificate;

/// The kinds of children the provisioner writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChildKind {
    /// `apps/v1` StatefulSet (KubeDB's PetSet).
    StatefulSet,
    /// `v1` Service.
    Service,
    /// `v1` Secret.
    Secret,
    /// `policy/v1` PodDisruptionBudget.
    PodDisruptionBudget,
    /// `cert-manager.io/v1` Certificate.
    Certificate,
    /// `v1` ServiceAccount of the agent pods.
    ServiceAccount,
    /// `rbac.authorization.k8s.io/v1` Role of the agents.
    Role,
    /// `rbac.authorization.k8s.io/v1` RoleBinding of that Role to the ServiceAccount(s).
    RoleBinding,
}

impl ChildKind {
    /// Every kind, in the order they are applied: the pods' identity and permissions, secrets
    /// and certificates before the pods that use them. Children the spec no longer produces are
    /// deleted in the reverse order, and so is everything when the database is deleted: the
    /// agents keep their permissions until their StatefulSets are gone.
    pub const ALL: [ChildKind; 8] = [
        Self::ServiceAccount,
        Self::Role,
        Self::RoleBinding,
        Self::Secret,
        Self::Certificate,
        Self::Service,
        Self::StatefulSet,
        Self::PodDisruptionBudget,
    ];

    /// Plural resource name (metrics label).
    pub fn resource(self) -> &'static str {
        match self {
            Self::StatefulSet => "statefulsets",
            Self::Service => "services",
            Self::Secret => "secrets",
            Self::PodDisruptionBudget => "poddisruptionbudgets",
            Self::Certificate => "certificates",
            Self::ServiceAccount => "serviceaccounts",
            Self::Role => "roles",
            Self::RoleBinding => "rolebindings",
        }
    }

    /// What happens to the children of this kind when the database is deleted.
    pub fn on_deletion(self) -> OnDeletion {
        match self {
            Self::StatefulSet
            | Self::Service
            | Self::PodDisruptionBudget
            | Self::Certificate
            | Self::ServiceAccount
            | Self::Role
            | Self::RoleBinding => OnDeletion::Delete,
            // Credentials a user may still need to read the data the PVCs keep.
            Self::Secret => OnDeletion::KeptUnlessWipeOut,
        }
    }

    /// Kind as spelled in the API.
    pub fn kind(self) -> &'static str {
        match self {
            Self::StatefulSet => "StatefulSet",
            Self::Service => "Service",
            Self::Secret => "Secret",
            Self::PodDisruptionBudget => "PodDisruptionBudget",
            Self::Certificate => "Certificate",
            Self::ServiceAccount => "ServiceAccount",
            Self::Role => "Role",
            Self::RoleBinding => "RoleBinding",
        }
    }
}

/// What the deletion of a database does with a kind of child (in the reverse of
/// [`ChildKind::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDeletion {
    /// The owned children are deleted.
    Delete,
    /// `deletionPolicy: WipeOut` deletes every labelled one; other policies orphan the owned ones
    /// so that garbage collection keeps them.
    KeptUnlessWipeOut,
}

/// One child rendered as JSON, ready to compare with the live object and to server-side apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    /// Its kind.
    pub kind: ChildKind,
    /// Its name (in the database's namespace).
    pub name: String,
    /// The full object as JSON (`apiVersion`, `kind`, `metadata`, ...).
    pub body: Value,
}

/// A typed child object the provisioner applies.
pub trait ChildObject: Serialize {
    /// Which kind of child this is.
    const KIND: ChildKind;

    /// Its name.
    fn child_name(&self) -> &str;

    /// Its metadata.
    fn child_meta(&self) -> &ObjectMeta;

    /// The object as JSON.
    fn render(&self) -> Result<Child, serde_json::Error> {
        Ok(Child {
            kind: Self::KIND,
            name: self.child_name().to_owned(),
            body: serde_json::to_value(self)?,
        })
    }
}

macro_rules! child_object {
    ($type:ty, $kind:expr) => {
        impl ChildObject for $type {
            const KIND: ChildKind = $kind;
            fn child_name(&self) -> &str {
                self.metadata.name.as_deref().unwrap_or_default()
            }
            fn child_meta(&self) -> &ObjectMeta {
                &self.metadata
            }
        }
    };
}
child_object!(StatefulSet, ChildKind::StatefulSet);
child_object!(Service, ChildKind::Service);
child_object!(Secret, ChildKind::Secret);
child_object!(PodDisruptionBudget, ChildKind::PodDisruptionBudget);
child_object!(Certificate, ChildKind::Certificate);
child_object!(ServiceAccount, ChildKind::ServiceAccount);
child_object!(Role, ChildKind::Role);
child_object!(RoleBinding, ChildKind::RoleBinding);

/// Something that looks at the children of a [`Desired`], kind by kind ([`Desired::visit`]).
pub trait KindVisitor {
    /// Called once per kind of child, with the children of that kind.
    fn visit<T: ChildObject>(&mut self, items: &[T]);
}

/// A secret with random credentials, created once when missing and never changed afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedSecret {
    /// Secret name.
    pub name: String,
    /// Secret type (`kubernetes.io/basic-auth` or `Opaque`).
    pub type_: String,
    /// Fixed string data (e.g. `username`).
    pub fixed: BTreeMap<String, String>,
    /// Keys that receive a fresh random password.
    pub random_keys: Vec<String>,
    /// Metadata (labels and owner reference).
    pub metadata: ObjectMeta,
}

/// Everything a database should have: one field per kind of child.
///
/// Code that handles children destructures this struct without `..` ([`Desired::visit`],
/// [`Desired::only_secrets`]), so a new kind of child is a compile error until it is rendered
/// and applied; its [`ChildKind`] then needs an arm in every exhaustive match (its API, how it is
/// read from the caches, whether it is kept on deletion).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// The agent pods' ServiceAccount.
    pub service_accounts: Vec<ServiceAccount>,
    /// The agents' Role.
    pub roles: Vec<Role>,
    /// The binding of that Role to the agent pods' ServiceAccount(s).
    pub role_bindings: Vec<RoleBinding>,
    /// Operator-rendered secrets (configuration), applied.
    pub secrets: Vec<Secret>,
    /// Secrets created once with random credentials.
    pub generated_secrets: Vec<GeneratedSecret>,
    /// cert-manager Certificates.
    pub certificates: Vec<Certificate>,
    /// Services.
    pub services: Vec<Service>,
    /// StatefulSets.
    pub stateful_sets: Vec<StatefulSet>,
    /// PodDisruptionBudgets.
    pub pdbs: Vec<PodDisruptionBudget>,
}

/// What does not fit in a child's name or label values, if anything (see
/// [`Desired::check_names`]).
fn name_problem<'a>(
    db: &str,
    kind: ChildKind,
    name: &str,
    labels: impl Iterator<Item = (&'a String, &'a String)>,
) -> Option<PlanError> {
    let (limit, why) = match kind {
        ChildKind::StatefulSet => (
            52,
            "Kubernetes labels its pods with `<name>-<10-character hash>`, at most 63 characters",
        ),
        ChildKind::Service => (63, "a Service name is a DNS label"),
        _ => (253, "an object name is a DNS subdomain"),
    };
    if name.len() > limit {
        return Some(too_long(
            db,
            &format!("{kind:?} {name}"),
            name.len(),
            limit,
            why,
        ));
    }
    label_problem(db, &format!("{kind:?} {name}"), labels)
}

/// A label value of `what` longer than 63 characters, if any.
fn label_problem<'a>(
    db: &str,
    what: &str,
    mut labels: impl Iterator<Item = (&'a String, &'a String)>,
) -> Option<PlanError> {
    labels
        .find(|(_, value)| value.len() > 63)
        .map(|(key, value)| {
            too_long(
                db,
                &format!("the label {key} of {what}"),
                value.len(),
                63,
                "a label value is at most 63 characters",
            )
        })
}

/// The error for `what`, `len` characters where `limit` fit.
fn too_long(db: &str, what: &str, len: usize, limit: usize, why: &str) -> PlanError {
    let fits = db.len().saturating_sub(len - limit);
    PlanError::invalid(format!(
        "the name {db:?} is too long for the objects made from it: {what} would be {len} characters, at most {limit} ({why}); use a name of at most {fits} characters"
    ))
}

impl Desired {
    /// Calls `visitor` with the children of each kind, in the order they are applied
    /// ([`ChildKind::ALL`]: identity, secrets and certificates before the pods that use them).
    /// The one place that lists the kinds of children: the destructuring has no `..`.
    pub fn visit(&self, visitor: &mut impl KindVisitor) {
        let Desired {
            service_accounts,
            roles,
            role_bindings,
            secrets,
            generated_secrets: _,
            certificates,
            services,
            stateful_sets,
            pdbs,
        } = self;
        visitor.visit(service_accounts);
        visitor.visit(roles);
        visitor.visit(role_bindings);
        visitor.visit(secrets);
        visitor.visit(certificates);
        visitor.visit(services);
        visitor.visit(stateful_sets);
        visitor.visit(pdbs);
    }

    /// Every applied child as JSON, in the order they are applied.
    pub fn rendered(&self) -> Result<Vec<Child>, serde_json::Error> {
        struct Render(Result<Vec<Child>, serde_json::Error>);
        impl KindVisitor for Render {
            fn visit<T: ChildObject>(&mut self, items: &[T]) {
                if let Ok(out) = &mut self.0 {
                    for item in items {
                        match item.render() {
                            Ok(child) => out.push(child),
                            Err(e) => {
                                self.0 = Err(e);
                                return;
                            }
                        }
                    }
                }
            }
        }
        let mut render = Render(Ok(Vec::new()));
        self.visit(&mut render);
        render.0
    }

    /// Whether every derived name and label value fits Kubernetes' limits (pure). A database
    /// name may be up to 63 characters, but its children's names add suffixes: a StatefulSet
    /// name is at most 52 (the `controller-revision-hash` label is `<name>-<10-character
    /// hash>`), a Service name and every label value at most 63, any other name at most 253.
    /// The error names the child, its length, the limit and the longest database name that fits.
    /// Reads the typed children; nothing is rendered.
    pub fn check_names(&self, db: &str) -> Result<(), PlanError> {
        struct Check<'a> {
            db: &'a str,
            found: Option<PlanError>,
        }
        impl KindVisitor for Check<'_> {
            fn visit<T: ChildObject>(&mut self, items: &[T]) {
                for item in items {
                    if self.found.is_none() {
                        self.found = name_problem(
                            self.db,
                            T::KIND,
                            item.child_name(),
                            item.child_meta().labels.iter().flatten(),
                        );
                    }
                }
            }
        }
        let mut check = Check { db, found: None };
        self.visit(&mut check);
        if let Some(problem) = check.found {
            return Err(problem);
        }
        // The pods' labels, from each StatefulSet's template.
        for set in &self.stateful_sets {
            let labels = set
                .spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref())
                .and_then(|m| m.labels.as_ref());
            let what = format!("the pods of StatefulSet {}", set.child_name());
            if let Some(problem) = label_problem(db, &what, labels.into_iter().flatten()) {
                return Err(problem);
            }
        }
        Ok(())
    }

    /// The secrets cert-manager issues the Certificates into (the pods mount them).
    pub fn certificate_secrets(&self) -> Vec<String> {
        self.certificates
            .iter()
            .map(|c| c.spec.secret_name.clone())
            .collect()
    }

    /// Keeps only secrets (what a halted database keeps).
    pub fn only_secrets(self) -> Self {
        let Desired {
            service_accounts: _,
            roles: _,
            role_bindings: _,
            secrets,
            generated_secrets,
            certificates: _,
            services: _,
            stateful_sets: _,
            pdbs: _,
        } = self;
        Desired {
            secrets,
            generated_secrets,
            ..Desired::default()
        }
    }

    /// Compares the plan with the live children (`live` gives a child's live object by kind and
    /// name) and keeps only what the reconcile still needs: the writes, as JSON text, and the
    /// names to keep.
    pub fn changes(
        self,
        live: impl Fn(ChildKind, &str) -> Option<Value>,
    ) -> Result<Changes, serde_json::Error> {
        /// Renders one child at a time and keeps only its write, so that at most one child is
        /// held as a JSON tree beside the typed plan.
        struct Compare<'a, F> {
            live: &'a F,
            changes: &'a mut Changes,
            error: Option<serde_json::Error>,
        }
        impl<F: Fn(ChildKind, &str) -> Option<Value>> KindVisitor for Compare<'_, F> {
            fn visit<T: ChildObject>(&mut self, items: &[T]) {
                for item in items {
                    if self.error.is_none()
                        && let Err(e) = self.changes.compare(item.render(), self.live)
                    {
                        self.error = Some(e);
                    }
                }
            }
        }
        let mut certificate_issuers = Vec::new();
        for c in &self.certificates {
            if !certificate_issuers.contains(&c.spec.issuer_ref) {
                certificate_issuers.push(c.spec.issuer_ref.clone());
            }
        }
        let mut changes = Changes {
            certificate_secrets: self.certificate_secrets(),
            certificate_issuers,
            sets: self
                .stateful_sets
                .iter()
                .map(|s| {
                    let replicas = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    (s.child_name().to_owned(), replicas)
                })
                .collect(),
            ..Changes::default()
        };
        for secret in &self.generated_secrets {
            changes
                .wanted
                .entry(ChildKind::Secret)
                .or_default()
                .insert(secret.name.clone());
        }
        let mut compare = Compare {
            live: &live,
            changes: &mut changes,
            error: None,
        };
        self.visit(&mut compare);
        if let Some(error) = compare.error {
            return Err(error);
        }
        changes.generated = self.generated_secrets;
        Ok(changes)
    }
}

/// What a reconcile keeps of its plan once it has compared the plan with the live children.
///
/// A plan is large as JSON trees (a StatefulSet takes about 40 KiB of memory) and a reconcile
/// holds what it keeps across its API calls, for every database reconciled at the same time; so
/// it keeps only the writes it still has to send, as JSON text, and names.
#[derive(Debug, Default)]
pub struct Changes {
    /// Children whose live object is missing or differs from the plan, in plan order.
    pub applies: Vec<Apply>,
    /// Names of every planned child by kind (generated secrets included): owned children not
    /// named here are no longer produced by the spec.
    pub wanted: BTreeMap<ChildKind, BTreeSet<String>>,
    /// Secrets created once with random credentials.
    pub generated: Vec<GeneratedSecret>,
    /// Certificate secrets the StatefulSets mount.
    pub certificate_secrets: Vec<String>,
    /// The issuers of the planned Certificates, each once.
    pub certificate_issuers: Vec<crate::build::certificate::IssuerRef>,
    /// Planned StatefulSets with their replicas.
    pub sets: Vec<(String, i32)>,
}

/// What of a rendered child can be compared with the cached one: all of it, except a Secret's
/// values, which the cache does not keep (a config secret carries
/// [`crate::build::secret::CONFIG_DIGEST`] for them instead).
fn comparable(kind: ChildKind, body: &Value) -> std::borrow::Cow<'_, Value> {
    match (kind, body) {
        (ChildKind::Secret, Value::Object(map))
            if map.contains_key("stringData") || map.contains_key("data") =>
        {
            let mut map = map.clone();
            map.remove("stringData");
            map.remove("data");
            std::borrow::Cow::Owned(Value::Object(map))
        }
        _ => std::borrow::Cow::Borrowed(body),
    }
}

impl Changes {
    /// Records a rendered child as wanted, and as a write when `live` has no object of its
    /// kind and name or one that differs from it.
    fn compare(
        &mut self,
        child: Result<Child, serde_json::Error>,
        live: impl Fn(ChildKind, &str) -> Option<Value>,
    ) -> Result<(), serde_json::Error> {
        let child = child?;
        self.wanted
            .entry(child.kind)
            .or_default()
            .insert(child.name.clone());
        let current = live(child.kind, &child.name);
        if needs_apply(&comparable(child.kind, &child.body), current.as_ref()) {
            self.applies.push(Apply {
                kind: child.kind,
                body: serde_json::value::to_raw_value(&child.body)?,
                name: child.name,
                creates: current.is_none(),
            });
        }
        Ok(())
    }

    /// Whether `name` is a planned child of `kind`.
    pub fn wants(&self, kind: ChildKind, name: &str) -> bool {
        self.wanted
            .get(&kind)
            .is_some_and(|names| names.contains(name))
    }

    /// The writes of `kind`.
    pub fn applies_of(&self, kind: ChildKind) -> impl Iterator<Item = &Apply> {
        self.applies.iter().filter(move |a| a.kind == kind)
    }
}

/// One child to server-side apply.
#[derive(Debug)]
pub struct Apply {
    /// Its kind.
    pub kind: ChildKind,
    /// Its name.
    pub name: String,
    /// The full object as JSON text.
    pub body: Box<RawValue>,
    /// Whether the child does not exist yet.
    pub creates: bool,
}

/// A spec the builders cannot turn into children.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PlanError {
    /// CamelCase reason for the condition and Event.
    pub reason: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl PlanError {
    /// An invalid spec.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            reason: "InvalidSpec",
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        }
    }

    fn service(name: &str, port: i32) -> Service {
        Service {
            metadata: meta(name),
            spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
                ports: Some(vec![k8s_openapi::api::core::v1::ServicePort {
                    port,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Service::default()
        }
    }

    fn set(name: &str, replicas: Option<i32>) -> StatefulSet {
        StatefulSet {
            metadata: meta(name),
            spec: Some(k8s_openapi::api::apps::v1::StatefulSetSpec {
                replicas,
                ..Default::default()
            }),
            ..StatefulSet::default()
        }
    }

    fn certificate(secret: &str) -> Certificate {
        let tls = api::common::TLSConfig {
            issuer_ref: Some(k8s_openapi::api::core::v1::TypedLocalObjectReference {
                api_group: None,
                kind: "Issuer".into(),
                name: "ca".into(),
            }),
            certificates: Some(vec![api::common::CertificateSpec {
                alias: "server".into(),
                secret_name: Some(secret.into()),
                ..Default::default()
            }]),
        };
        let db = crate::database::DbRef {
            kind: crate::database::DbKind::MSSQLServer,
            name: "db".into(),
            namespace: "ns".into(),
            uid: "u".into(),
        };
        let alias = crate::build::certificate::CertAlias {
            alias: "server",
            common_name: "db".into(),
            dns_names: vec![],
            ip_addresses: vec![],
            pkcs12_password: None,
        };
        crate::build::certificate::certificate(&db, &tls, &alias).unwrap()
    }

    fn body<T: ChildObject>(object: &T) -> Value {
        object.render().unwrap().body
    }

    #[test]
    fn all_lists_every_kind_of_desired_in_apply_order() {
        struct Kinds(Vec<ChildKind>);
        impl KindVisitor for Kinds {
            fn visit<T: ChildObject>(&mut self, _: &[T]) {
                self.0.push(T::KIND);
            }
        }
        let mut kinds = Kinds(Vec::new());
        Desired::default().visit(&mut kinds);
        assert_eq!(kinds.0, ChildKind::ALL);
        let deleted: Vec<ChildKind> = ChildKind::ALL
            .into_iter()
            .filter(|k| k.on_deletion() == OnDeletion::Delete)
            .collect();
        assert_eq!(
            deleted,
            [
                ChildKind::ServiceAccount,
                ChildKind::Role,
                ChildKind::RoleBinding,
                ChildKind::Certificate,
                ChildKind::Service,
                ChildKind::StatefulSet,
                ChildKind::PodDisruptionBudget
            ]
        );
        // Deleted in the reverse order: the agents' permissions outlive their StatefulSets.
        let position = |kind| ChildKind::ALL.iter().position(|k| *k == kind).unwrap();
        for identity in [
            ChildKind::ServiceAccount,
            ChildKind::Role,
            ChildKind::RoleBinding,
        ] {
            assert!(position(identity) < position(ChildKind::StatefulSet));
        }
    }

    #[test]
    fn rendering_follows_the_apply_order() {
        let desired = Desired {
            service_accounts: vec![ServiceAccount {
                metadata: meta("sa"),
                ..ServiceAccount::default()
            }],
            roles: vec![Role {
                metadata: meta("role"),
                ..Role::default()
            }],
            role_bindings: vec![RoleBinding {
                metadata: meta("binding"),
                ..RoleBinding::default()
            }],
            secrets: vec![Secret {
                metadata: meta("config"),
                ..Secret::default()
            }],
            generated_secrets: vec![],
            certificates: vec![certificate("server-cert")],
            services: vec![service("svc", 1)],
            stateful_sets: vec![set("sts", Some(1))],
            pdbs: vec![PodDisruptionBudget {
                metadata: meta("pdb"),
                ..PodDisruptionBudget::default()
            }],
        };
        let kinds: Vec<ChildKind> = desired.rendered().unwrap().iter().map(|c| c.kind).collect();
        assert_eq!(kinds, ChildKind::ALL);
        let halted = desired.clone().only_secrets();
        assert_eq!(halted.secrets, desired.secrets);
        assert!(halted.certificates.is_empty() && halted.stateful_sets.is_empty());
        assert!(halted.services.is_empty() && halted.pdbs.is_empty());
        assert!(halted.service_accounts.is_empty() && halted.roles.is_empty());
        assert!(halted.role_bindings.is_empty());
    }

    #[test]
    fn a_config_secret_is_compared_by_its_digest_not_its_values() {
        let db = crate::database::DbRef {
            kind: crate::database::DbKind::MSSQLServer,
            name: "db".into(),
            namespace: "ns".into(),
            uid: "u".into(),
        };
        let data = |conf: &str| BTreeMap::from([("mssql.conf".to_owned(), conf.to_owned())]);
        let rendered = |conf: &str| crate::build::secret::config_secret(&db, "db-cfg", &data(conf));
        // What the cache holds of the applied secret: keys without values (slim_secret).
        let mut cached = rendered("[memory]\nmemorylimitmb = 2048\n");
        cached.data = cached.string_data.take().map(|d| {
            d.into_keys()
                .map(|k| (k, k8s_openapi::ByteString(Vec::new())))
                .collect()
        });
        let live_value = serde_json::to_value(&cached).unwrap();
        let applies = |conf: &str| {
            let desired = Desired {
                secrets: vec![rendered(conf)],
                ..Desired::default()
            };
            let live = |kind: ChildKind, name: &str| {
                (kind == ChildKind::Secret && name == "db-cfg").then(|| live_value.clone())
            };
            desired.changes(live).unwrap().applies.len()
        };
        assert_eq!(applies("[memory]\nmemorylimitmb = 2048\n"), 0, "converged");
        assert_eq!(applies("[memory]\nmemorylimitmb = 4096\n"), 1, "changed");
        // The digest is stable and tells key from value.
        let digest = crate::build::secret::config_digest;
        assert_eq!(digest(&data("x")), digest(&data("x")));
        assert_ne!(
            digest(&BTreeMap::from([("ab".to_owned(), "c".to_owned())])),
            digest(&BTreeMap::from([("a".to_owned(), "bc".to_owned())]))
        );
        assert!(digest(&data("x")).starts_with("sha256:"));
    }

    #[test]
    fn changes_keep_only_what_differs_from_the_live_children() {
        let desired = Desired {
            services: vec![service("same", 1), service("drifted", 2)],
            stateful_sets: vec![set("new", Some(3)), set("defaulted", None)],
            generated_secrets: vec![GeneratedSecret {
                name: "auth".into(),
                type_: "Opaque".into(),
                fixed: BTreeMap::new(),
                random_keys: vec!["password".into()],
                metadata: ObjectMeta::default(),
            }],
            certificates: vec![certificate("server-cert")],
            ..Desired::default()
        };
        let live_objects = BTreeMap::from([
            // Fields the API server added do not count as a difference.
            ((ChildKind::Service, "same"), {
                let mut live = body(&service("same", 1));
                live["metadata"]["uid"] = json!("u");
                live["spec"]["clusterIP"] = json!("10.0.0.1");
                live
            }),
            (
                (ChildKind::Service, "drifted"),
                body(&service("drifted", 9)),
            ),
            (
                (ChildKind::StatefulSet, "defaulted"),
                body(&set("defaulted", Some(1))),
            ),
            (
                (ChildKind::Certificate, "server-cert"),
                body(&certificate("server-cert")),
            ),
        ]);
        let live = |kind: ChildKind, name: &str| live_objects.get(&(kind, name)).cloned();
        let changes = desired.changes(live).unwrap();
        let applies: Vec<(ChildKind, &str, bool)> = changes
            .applies
            .iter()
            .map(|a| (a.kind, a.name.as_str(), a.creates))
            .collect();
        assert_eq!(
            applies,
            [
                (ChildKind::Service, "drifted", false),
                (ChildKind::StatefulSet, "new", true),
            ]
        );
        let sent: Value = serde_json::from_str(changes.applies[1].body.get()).unwrap();
        assert_eq!(sent, body(&set("new", Some(3))));
        assert_eq!(
            changes.applies_of(ChildKind::StatefulSet).count(),
            1,
            "filtered by kind"
        );
        for (kind, name) in [
            (ChildKind::Service, "same"),
            (ChildKind::StatefulSet, "defaulted"),
            (ChildKind::Secret, "auth"),
        ] {
            assert!(changes.wants(kind, name), "{kind:?} {name}");
        }
        assert!(!changes.wants(ChildKind::Service, "auth"));
        assert_eq!(
            changes.sets,
            [("new".to_owned(), 3), ("defaulted".to_owned(), 1)]
        );
        assert_eq!(changes.certificate_secrets, ["server-cert"]);
    }
}
