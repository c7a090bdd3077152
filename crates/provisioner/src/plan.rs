//! The desired state of a database's children, produced by the pure builders in [`crate::build`]
//! and applied by the reconciler.

use std::collections::BTreeMap;

use serde_json::Value;

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
