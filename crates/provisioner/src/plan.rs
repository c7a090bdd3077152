//! The desired state of a database's children, produced by the pure builders in [`crate::build`]
//! and applied by the reconciler.

use std::collections::{BTreeMap, BTreeSet};

use operator_common::apply::needs_apply;
use serde_json::Value;
use serde_json::value::RawValue;

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
}

impl ChildKind {
    /// Every kind, in the order they are applied (secrets and certificates before the pods that
    /// mount them).
    pub const ALL: [ChildKind; 5] = [
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
        }
    }
}

/// One child to server-side apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    /// Its kind.
    pub kind: ChildKind,
    /// Its name (in the database's namespace).
    pub name: String,
    /// The full object as JSON (`apiVersion`, `kind`, `metadata`, ...).
    pub body: Value,
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
    /// Metadata (labels and owner reference) as JSON.
    pub metadata: Value,
}

/// Everything a database should have.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// Children to apply.
    pub children: Vec<Child>,
    /// Secrets created once with random credentials.
    pub generated: Vec<GeneratedSecret>,
    /// Certificate secrets the StatefulSets mount: the pods are not created before they exist.
    pub certificate_secrets: Vec<String>,
}

impl Desired {
    /// Names of the desired children of `kind` (including generated secrets).
    pub fn names(&self, kind: ChildKind) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .children
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.name.as_str())
            .collect();
        if kind == ChildKind::Secret {
            names.extend(self.generated.iter().map(|g| g.name.as_str()));
        }
        names
    }

    /// The desired children of `kind`.
    pub fn of(&self, kind: ChildKind) -> impl Iterator<Item = &Child> {
        self.children.iter().filter(move |c| c.kind == kind)
    }

    /// Keeps only secrets (what a halted database keeps).
    pub fn only_secrets(mut self) -> Self {
        self.children.retain(|c| c.kind == ChildKind::Secret);
        self.certificate_secrets.clear();
        self
    }

    /// Compares the plan with the live children (`live` gives a child's live object by kind and
    /// name) and keeps only what the reconcile still needs: the writes, as JSON text, and the
    /// names to keep.
    pub fn changes(
        self,
        live: impl Fn(ChildKind, &str) -> Option<Value>,
    ) -> Result<Changes, serde_json::Error> {
        let mut changes = Changes {
            generated: self.generated,
            certificate_secrets: self.certificate_secrets,
            ..Changes::default()
        };
        for secret in &changes.generated {
            changes
                .wanted
                .entry(ChildKind::Secret)
                .or_default()
                .insert(secret.name.clone());
        }
        for child in self.children {
            changes
                .wanted
                .entry(child.kind)
                .or_default()
                .insert(child.name.clone());
            if child.kind == ChildKind::StatefulSet {
                let replicas = child.body["spec"]["replicas"].as_i64().unwrap_or(1);
                changes
                    .sets
                    .push((child.name.clone(), i32::try_from(replicas).unwrap_or(1)));
            }
            let current = live(child.kind, &child.name);
            if needs_apply(&child.body, current.as_ref()) {
                changes.applies.push(Apply {
                    kind: child.kind,
                    body: serde_json::value::to_raw_value(&child.body)?,
                    name: child.name,
                    creates: current.is_none(),
                });
            }
        }
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
    /// Planned StatefulSets with their replicas.
    pub sets: Vec<(String, i32)>,
}

impl Changes {
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

    fn child(kind: ChildKind, name: &str, spec: Value) -> Child {
        Child {
            kind,
            name: name.to_owned(),
            body: json!({"metadata": {"name": name}, "spec": spec}),
        }
    }

    #[test]
    fn changes_keep_only_what_differs_from_the_live_children() {
        let desired = Desired {
            children: vec![
                child(ChildKind::Service, "same", json!({"port": 1})),
                child(ChildKind::Service, "drifted", json!({"port": 2})),
                child(ChildKind::StatefulSet, "new", json!({"replicas": 3})),
                child(ChildKind::StatefulSet, "defaulted", json!({})),
            ],
            generated: vec![GeneratedSecret {
                name: "auth".into(),
                type_: "Opaque".into(),
                fixed: BTreeMap::new(),
                random_keys: vec!["password".into()],
                metadata: json!({}),
            }],
            certificate_secrets: vec!["server-cert".into()],
        };
        let live = |kind: ChildKind, name: &str| match (kind, name) {
            // Fields the API server added do not count as a difference.
            (ChildKind::Service, "same") => Some(
                json!({"metadata": {"name": "same", "uid": "u"}, "spec": {"port": 1, "ip": "x"}}),
            ),
            (ChildKind::Service, "drifted") => {
                Some(json!({"metadata": {"name": "drifted"}, "spec": {"port": 9}}))
            }
            (ChildKind::StatefulSet, "defaulted") => {
                Some(json!({"metadata": {"name": "defaulted"}, "spec": {"replicas": 1}}))
            }
            _ => None,
        };
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
        assert_eq!(
            sent,
            json!({"metadata": {"name": "new"}, "spec": {"replicas": 3}})
        );
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
