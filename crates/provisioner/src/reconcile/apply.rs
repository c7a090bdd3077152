//! The apply step: compares the desired children with the live ones, server-side applies what
//! differs (nothing while the database is paused), creates missing generated secrets, and deletes
//! the owned children the spec no longer produces (after the applies, in the reverse of the apply
//! order, as deletion does: a halted database loses its StatefulSets before its pods' RBAC).

use std::collections::BTreeMap;
use std::sync::Arc;

use api::names;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::Value;

use super::Context;
use super::io::{api_for, delete, get_secret, is_controlled_by};
use super::observe::Observed;
use super::validate::{self, IssuerSeen};
use crate::build::certificate::IssuerRef;
use crate::cache::{Children, Compact};
use crate::database::DbRef;
use crate::error::{Error, Result};
use crate::plan::{Changes, ChildKind, Desired};
use crate::status::Blocker;

/// What the apply step did and found.
pub struct Applied {
    /// The writes the plan needed (already sent unless paused), or why there is no plan.
    pub changes: std::result::Result<Changes, Blocker>,
    /// Certificate secrets cert-manager has not issued yet; `None` without TLS (or halted).
    pub missing_certificates: Option<Vec<String>>,
    /// Why the missing certificates cannot come (their issuer is absent or not Ready); `None`
    /// when nothing is missing or cert-manager is simply not done yet.
    pub certificate_problem: Option<Blocker>,
    /// Whether this reconcile created a StatefulSet (not in the cache yet).
    pub created_sets: bool,
    /// The spec change refused ([`super::validate::refusal`]): nothing was written.
    pub refused: Option<Blocker>,
}

/// Applies `desired` to the database's children.
pub async fn apply<V>(
    ctx: &Context,
    r: &DbRef,
    observed: &Observed<V>,
    desired: std::result::Result<Desired, Blocker>,
    refused: Option<Blocker>,
) -> Result<Applied> {
    let children = &observed.children;
    let changes = match desired {
        Ok(desired) => desired
            .changes(|kind, name| children.live(kind, name))
            .map_err(|source| Error::Serialization {
                what: format!("the planned children of {}", r.key()),
                source,
            })?,
        Err(blocker) => {
            return Ok(Applied {
                changes: Err(blocker),
                missing_certificates: None,
                certificate_problem: None,
                created_sets: false,
                refused: None,
            });
        }
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &r.namespace);
    let missing = missing_cert_secrets(&secrets, children, &changes).await?;
    // Only while a certificate is missing: a converged database reads no issuer.
    let certificate_problem = if missing.is_empty() {
        None
    } else {
        issuer_problem(ctx, &r.namespace, &changes.certificate_issuers).await
    };
    // Paused, or a refused spec change: the children stay as they are.
    let created_sets = if observed.paused || refused.is_some() {
        false
    } else {
        apply_changes(ctx, r, &changes, children, missing.is_empty()).await?
    };
    Ok(Applied {
        missing_certificates: (!changes.certificate_secrets.is_empty()).then_some(missing),
        certificate_problem,
        changes: Ok(changes),
        created_sets,
        refused,
    })
}

impl Children {
    /// The live object of the child of `kind` named `name`, as JSON.
    pub fn live(&self, kind: ChildKind, name: &str) -> Option<Value> {
        fn find<K>(list: &[Arc<Compact<K>>], name: &str) -> Option<Value> {
            list.iter()
                .find(|o| o.metadata.name.as_deref() == Some(name))
                .map(|o| o.to_value())
        }
        match kind {
            ChildKind::StatefulSet => find(&self.sets, name),
            ChildKind::Service => find(&self.services, name),
            ChildKind::Secret => self
                .secrets
                .iter()
                .find(|o| o.metadata.name.as_deref() == Some(name))
                .and_then(|o| serde_json::to_value(o.as_ref()).ok()),
            ChildKind::PodDisruptionBudget => find(&self.pdbs, name),
            ChildKind::Certificate => self.certificates.as_deref().and_then(|c| find(c, name)),
            ChildKind::ServiceAccount => find(&self.service_accounts, name),
            ChildKind::Role => find(&self.roles, name),
            ChildKind::RoleBinding => find(&self.role_bindings, name),
        }
    }

    /// Names of the cached children of `kind` (labelled with the database's selector), each
    /// with whether the database `uid` controls it. cert-manager's secrets are labelled but not
    /// owned.
    pub fn labelled(&self, kind: ChildKind, uid: &str) -> Vec<(String, bool)> {
        fn names<K: Resource>(list: &[Arc<K>], uid: &str) -> Vec<(String, bool)> {
            list.iter()
                .filter_map(|o| {
                    let meta = o.meta();
                    let owned = is_controlled_by(meta.owner_references.as_deref(), uid);
                    meta.name.clone().map(|name| (name, owned))
                })
                .collect()
        }
        match kind {
            ChildKind::StatefulSet => names(&self.sets, uid),
            ChildKind::Service => names(&self.services, uid),
            ChildKind::Secret => names(&self.secrets, uid),
            ChildKind::PodDisruptionBudget => names(&self.pdbs, uid),
            ChildKind::Certificate => self
                .certificates
                .as_deref()
                .map(|c| names(c, uid))
                .unwrap_or_default(),
            ChildKind::ServiceAccount => names(&self.service_accounts, uid),
            ChildKind::Role => names(&self.roles, uid),
            ChildKind::RoleBinding => names(&self.role_bindings, uid),
        }
    }

    /// Names of the children of `kind` controlled by the database `uid`.
    pub fn owned(&self, kind: ChildKind, uid: &str) -> Vec<String> {
        self.labelled(kind, uid)
            .into_iter()
            .filter_map(|(name, owned)| owned.then_some(name))
            .collect()
    }
}

/// Certificate secrets that do not exist yet (looked up by name when not among the labelled ones).
async fn missing_cert_secrets(
    secrets: &Api<Secret>,
    children: &Children,
    changes: &Changes,
) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for name in &changes.certificate_secrets {
        let labelled = children
            .secrets
            .iter()
            .any(|s| s.meta().name.as_deref() == Some(name.as_str()) && has_tls_data(s));
        if labelled {
            continue;
        }
        if !get_secret(secrets, name)
            .await?
            .is_some_and(|s| has_tls_data(&s))
        {
            missing.push(name.clone());
        }
    }
    Ok(missing)
}

/// The first problem of the certificates' issuers (cert-manager's own kinds only; an external
/// issuer is not judged). A read that fails for another reason than absence judges nothing.
async fn issuer_problem(ctx: &Context, namespace: &str, issuers: &[IssuerRef]) -> Option<Blocker> {
    for issuer in issuers {
        if issuer.group != "cert-manager.io" {
            continue;
        }
        let (plural, cluster) = match issuer.kind.as_str() {
            "Issuer" => ("issuers", false),
            "ClusterIssuer" => ("clusterissuers", true),
            _ => continue,
        };
        let resource = ApiResource {
            group: issuer.group.clone(),
            version: "v1".into(),
            api_version: format!("{}/v1", issuer.group),
            kind: issuer.kind.clone(),
            plural: plural.into(),
        };
        let api: Api<DynamicObject> = if cluster {
            Api::all_with(ctx.client.clone(), &resource)
        } else {
            Api::namespaced_with(ctx.client.clone(), namespace, &resource)
        };
        let seen = match api.get_opt(&issuer.name).await {
            Ok(None) => IssuerSeen::Missing,
            Ok(Some(object)) => seen_issuer(&object),
            Err(e) => {
                tracing::debug!(issuer = %issuer.name, error = %e, "cannot read the issuer");
                IssuerSeen::Fine
            }
        };
        if let Some(problem) = validate::issuer_problem(issuer, namespace, &seen) {
            return Some(problem);
        }
    }
    None
}

/// An issuer's `Ready` condition, as [`IssuerSeen`].
fn seen_issuer(object: &DynamicObject) -> IssuerSeen {
    let ready = object.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    match ready {
        Some(c) if c["status"] == "False" => IssuerSeen::NotReady {
            reason: c["reason"].as_str().unwrap_or_default().to_owned(),
            message: c["message"].as_str().unwrap_or_default().to_owned(),
        },
        _ => IssuerSeen::Fine,
    }
}

fn has_tls_data(secret: &Secret) -> bool {
    secret
        .data
        .as_ref()
        .is_some_and(|d| d.contains_key("tls.crt") && d.contains_key("tls.key"))
}

/// Applies the desired children that differ from the live ones, creates missing generated
/// secrets, and then deletes owned children the spec no longer produces, in the reverse of the
/// apply order. Returns whether a StatefulSet was created.
async fn apply_changes(
    ctx: &Context,
    r: &DbRef,
    changes: &Changes,
    children: &Children,
    certificates_issued: bool,
) -> Result<bool> {
    let mut created_sets = false;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &r.namespace);
    for generated in &changes.generated {
        let exists = children
            .secrets
            .iter()
            .any(|s| s.meta().name.as_deref() == Some(generated.name.as_str()))
            || get_secret(&secrets, &generated.name).await?.is_some();
        if exists {
            continue;
        }
        let mut data = BTreeMap::new();
        for (k, v) in &generated.fixed {
            data.insert(k.clone(), ByteString(v.clone().into_bytes()));
        }
        for key in &generated.random_keys {
            data.insert(
                key.clone(),
                ByteString(crate::password::generate()?.into_bytes()),
            );
        }
        let metadata = generated.metadata.clone();
        let secret = Secret {
            metadata,
            type_: Some(generated.type_.clone()),
            data: Some(data),
            ..Secret::default()
        };
        match secrets
            .create(
                &PostParams {
                    field_manager: Some(names::PROVISIONER_FIELD_MANAGER.into()),
                    ..PostParams::default()
                },
                &secret,
            )
            .await
        {
            Ok(_) => {
                ctx.metrics.write("secrets", "create");
                tracing::info!(db = %r.key(), secret = %generated.name, "created secret with generated credentials");
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                return Err(Error::kube(
                    format!("creating secret {}", generated.name),
                    e,
                ));
            }
        }
    }

    for kind in ChildKind::ALL {
        let api = api_for(&ctx.client, &r.namespace, kind);
        for child in changes.applies_of(kind) {
            if kind == ChildKind::StatefulSet && child.creates && !certificates_issued {
                // Pods would fail to mount the certificate secrets; wait for cert-manager.
                continue;
            }
            if kind == ChildKind::Certificate && children.certificates.is_none() {
                // cert-manager is not installed; the CertificatesIssued condition says so.
                continue;
            }
            operator_common::apply::apply(
                &api,
                &child.name,
                child.body.as_ref(),
                names::PROVISIONER_FIELD_MANAGER,
            )
            .await
            .map_err(|e| {
                Error::kube(
                    format!("applying {} {}/{}", kind.kind(), r.namespace, child.name),
                    e,
                )
            })?;
            ctx.metrics.write(kind.resource(), "apply");
            created_sets |= kind == ChildKind::StatefulSet && child.creates;
            tracing::info!(db = %r.key(), kind = kind.kind(), name = %child.name, "applied");
        }
    }
    for kind in ChildKind::ALL.into_iter().rev() {
        let api = api_for(&ctx.client, &r.namespace, kind);
        for name in children.owned(kind, &r.uid) {
            if !changes.wants(kind, &name) {
                delete(&api, &name, kind, ctx).await?;
                tracing::info!(db = %r.key(), kind = kind.kind(), %name, "deleted child the spec no longer produces");
            }
        }
    }
    Ok(created_sets)
}
