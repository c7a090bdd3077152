//! The validate step, pure: from what was observed to the children the database should have, or
//! the [`Blocker`] that says why it cannot have them (an unknown or deprecated Version, a missing
//! user secret, an invalid spec, TLS without cert-manager). The building itself is
//! [`crate::build`]'s, through [`Database::plan`].

use std::borrow::Cow;

use k8s_openapi::api::apps::v1::StatefulSet;

use super::observe::Observed;
use crate::database::{Database, PlanInput};
use crate::plan::Desired;
use crate::status::Blocker;

/// The children `db` should have now: everything its spec produces, or only its secrets while
/// it is halted. `agent_image` (`--agent-image`) replaces the Version's coordinator image.
pub fn desired<K: Database>(
    db: &K,
    observed: &Observed<K::Version>,
    agent_image: Option<&str>,
) -> Result<Desired, Blocker> {
    let version = observed.version.as_ref().map_err(Clone::clone)?;
    let version = match agent_image {
        Some(image) => {
            let mut replaced = version.clone();
            K::use_agent_image(&mut replaced, image);
            Cow::Owned(replaced)
        }
        None => Cow::Borrowed(version),
    };
    if !observed.missing_user_secrets.is_empty() {
        return Err(Blocker {
            reason: "SecretNotFound".into(),
            message: format!(
                "the secret {} does not exist in namespace {}; create it (the license secret needs the key `password`)",
                observed.missing_user_secrets.join(", "),
                kube::ResourceExt::namespace(db).unwrap_or_default()
            ),
        });
    }
    if let Some((name, key)) = observed.incomplete_user_secrets.first() {
        return Err(Blocker {
            reason: "SecretKeyNotFound".into(),
            message: format!(
                "the secret {name} in namespace {} has no key `{key}` (or it is empty); add it: the pods read it from there",
                kube::ResourceExt::namespace(db).unwrap_or_default()
            ),
        });
    }
    let desired = db
        .plan(&PlanInput {
            version: &version,
            config_sources: &observed.config_sources,
        })
        .and_then(|desired| {
            desired.check_names(&kube::ResourceExt::name_any(db))?;
            Ok(desired)
        })
        .map_err(|e| Blocker {
            reason: e.reason.to_owned(),
            message: e.message,
        })?;
    if observed.children.certificates.is_none() && !desired.certificates.is_empty() {
        return Err(cert_manager_missing());
    }
    Ok(if db.halted() {
        desired.only_secrets()
    } else {
        desired
    })
}

/// The spec change the provisioner refuses to carry out, if any (pure): one that would cut the
/// database off its data or restart it on other images outside an ops request. `live` are the
/// database's StatefulSets as they are, `desired` the ones the spec produces now, `version` the
/// Version whose images `desired` carries. Halting is not a refusal (the volumes stay).
///
/// - a StatefulSet with data volumes that the spec no longer produces (for example a SingleStore
///   standalone turned into a topology): its volumes would be orphaned and new empty ones made;
/// - data volumes that the spec drops (`storageType: Durable` → `Ephemeral`);
/// - a data volume's size or storage class changed (a StatefulSet's volume templates cannot
///   change; a size change is a VolumeExpansion ops request);
/// - the database container's image changed without an UpdateVersion (a direct edit of
///   `spec.version`, a downgrade included, or a Version whose image changed in place).
pub fn refusal(live: &[StatefulSet], desired: &[StatefulSet], version: &str) -> Option<Blocker> {
    let refuse = |reason: &str, message: String| {
        Some(Blocker {
            reason: reason.into(),
            message,
        })
    };
    for set in live {
        let name = set.metadata.name.as_deref().unwrap_or_default();
        let claims = claims(set);
        let Some(wanted) = desired
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(name))
        else {
            if !claims.is_empty() {
                return refuse(
                    "TopologyChangeRefused",
                    format!(
                        "the spec no longer produces the StatefulSet {name}, whose pods keep their data on volumes ({}): changing the topology would leave that data behind and start on empty volumes. Set the topology back; moving data to another topology needs a new database and a restore",
                        claims
                            .iter()
                            .map(|(c, _)| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            continue;
        };
        let wanted_claims = self::claims(wanted);
        for (claim, (size, class)) in &claims {
            match wanted_claims.iter().find(|(c, _)| c == claim) {
                None => {
                    return refuse(
                        "StorageChangeRefused",
                        format!(
                            "the StatefulSet {name} keeps its data on volumes {claim}-{name}-<n>; the spec drops them (storageType Ephemeral?), which would start the pods on empty directories. Set spec.storageType back to Durable"
                        ),
                    );
                }
                Some((_, (new_size, new_class)))
                    if !same_quantity(new_size.as_deref(), size.as_deref())
                        || new_class != class =>
                {
                    return refuse(
                        "StorageChangeRefused",
                        format!(
                            "the data volumes of the StatefulSet {name} are {} ({}); the spec asks for {} ({}): a StatefulSet's volume templates cannot change. Set the storage back, and grow volumes with a VolumeExpansion ops request",
                            size.as_deref().unwrap_or("unset"),
                            class.as_deref().unwrap_or("default class"),
                            new_size.as_deref().unwrap_or("unset"),
                            new_class.as_deref().unwrap_or("default class"),
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        let image = |s: &StatefulSet| -> Option<(String, String)> {
            let c = s
                .spec
                .as_ref()?
                .template
                .spec
                .as_ref()?
                .containers
                .first()?;
            Some((c.name.clone(), c.image.clone().unwrap_or_default()))
        };
        if let (Some((container, running)), Some((same, target))) = (image(set), image(wanted))
            && container == same
            && running != target
        {
            return refuse(
                "VersionChangeRefused",
                format!(
                    "the StatefulSet {name} runs {running} in its {container} container; spec.version {version} names {target}: a version changes only through an UpdateVersion ops request, which restarts the pods in a safe order. Set spec.version back and create an UpdateVersion ops request"
                ),
            );
        }
    }
    None
}

/// Whether two storage quantities are the same amount (`1Gi` = `1024Mi`); unparsable ones
/// compare as text.
fn same_quantity(a: Option<&str>, b: Option<&str>) -> bool {
    match (a.and_then(bytes), b.and_then(bytes)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// A Kubernetes quantity in bytes: an integer with a binary (`Ki` … `Ei`) or decimal (`k` …
/// `E`) suffix, or none. `None` for anything else (fractions, exponents).
fn bytes(quantity: &str) -> Option<u128> {
    let q = quantity.trim();
    let split = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let (digits, suffix) = q.split_at(split);
    let n: u128 = digits.parse().ok()?;
    let factor: u128 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// A volume claim template's requested storage and storage class.
type ClaimShape = (Option<String>, Option<String>);

/// A StatefulSet's volume claim templates: name → (requested storage, storage class).
fn claims(set: &StatefulSet) -> Vec<(String, ClaimShape)> {
    set.spec
        .iter()
        .flat_map(|s| s.volume_claim_templates.iter().flatten())
        .map(|t| {
            let spec = t.spec.as_ref();
            (
                t.metadata.name.clone().unwrap_or_default(),
                (
                    spec.and_then(|s| s.resources.as_ref())
                        .and_then(|r| r.requests.as_ref())
                        .and_then(|r| r.get("storage"))
                        .map(|q| q.0.clone()),
                    spec.and_then(|s| s.storage_class_name.clone()),
                ),
            )
        })
        .collect()
}

/// The blocker of a TLS database when the Certificate API is not served.
pub fn cert_manager_missing() -> Blocker {
    Blocker {
        reason: "CertManagerNotInstalled".into(),
        message: "the cert-manager.io/v1 Certificate API is not served in this cluster: install cert-manager (the database's TLS certificates are issued through it)".into(),
    }
}

/// An Issuer or ClusterIssuer as read, reduced to what decides whether certificates can come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerSeen {
    /// No such object.
    Missing,
    /// Its `Ready` condition is `False` (cert-manager's reason and message).
    NotReady {
        /// cert-manager's reason.
        reason: String,
        /// cert-manager's message.
        message: String,
    },
    /// Ready, or not judged yet (no `Ready` condition), or not readable.
    Fine,
}

/// Reason of `CertificatesIssued` False when the named issuer does not exist.
pub const REASON_ISSUER_NOT_FOUND: &str = "IssuerNotFound";
/// Reason of `CertificatesIssued` False when the named issuer exists but is not Ready.
pub const REASON_ISSUER_NOT_READY: &str = "IssuerNotReady";

/// Why the certificates cannot be issued, given how their issuer looks (pure): `None` when the
/// issuer is fine and cert-manager is simply not done yet.
pub fn issuer_problem(
    issuer: &crate::build::certificate::IssuerRef,
    namespace: &str,
    seen: &IssuerSeen,
) -> Option<Blocker> {
    let what = if issuer.kind == "ClusterIssuer" {
        format!("ClusterIssuer {:?}", issuer.name)
    } else {
        format!("{} {:?} in namespace {namespace}", issuer.kind, issuer.name)
    };
    match seen {
        IssuerSeen::Fine => None,
        IssuerSeen::Missing => Some(Blocker {
            reason: REASON_ISSUER_NOT_FOUND.into(),
            message: format!(
                "spec.tls.issuerRef names {what}, which does not exist: create it, or name an existing issuer; no certificate can be issued until then, and the pods wait for them"
            ),
        }),
        IssuerSeen::NotReady { reason, message } => Some(Blocker {
            reason: REASON_ISSUER_NOT_READY.into(),
            message: format!(
                "spec.tls.issuerRef names {what}, which is not Ready ({reason}: {message}); the pods wait for their certificates until it is"
            ),
        }),
    }
}

/// The update target the StatefulSets are pinned to, if it differs from `spec_version` (pure).
/// Several StatefulSets of one database carry the same target; the first one that differs wins.
pub fn pinned_target<'a>(spec_version: &str, pins: &[&'a str]) -> Option<&'a str> {
    pins.iter()
        .copied()
        .find(|p| !p.is_empty() && *p != spec_version)
}

/// The blocker of an unknown (`exists == false`) or deprecated version.
pub fn version_blocker(kind: &str, name: &str, exists: bool, available: &[String]) -> Blocker {
    let list = if available.is_empty() {
        "none".to_owned()
    } else {
        available.join(", ")
    };
    if exists {
        Blocker {
            reason: "VersionDeprecated".into(),
            message: format!(
                "{kind} {name:?} is deprecated and is not provisioned; available versions: {list}"
            ),
        }
    } else {
        Blocker {
            reason: "VersionNotFound".into(),
            message: format!("{kind} {name:?} does not exist; available versions: {list}"),
        }
    }
}

#[cfg(test)]
mod issuer_tests {
    use super::*;
    use crate::build::certificate::IssuerRef;

    /// A StatefulSet `name` running `image`, with a `data` volume of `size` (none: ephemeral).
    fn set(name: &str, image: &str, size: Option<&str>) -> StatefulSet {
        let claims = size.map(|size| {
            serde_json::json!([{"metadata": {"name": "data"},
                "spec": {"resources": {"requests": {"storage": size}}}}])
        });
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {
                "selector": {},
                "serviceName": "x",
                "template": {"spec": {"containers": [{"name": "mssql", "image": image}]}},
                "volumeClaimTemplates": claims,
            }
        }))
        .unwrap()
    }

    #[test]
    fn spec_changes_that_cut_a_database_off_its_data_are_refused() {
        let (old, new) = ("mssql:2022", "mssql:2025");
        let reason = |live: &[StatefulSet], desired: &[StatefulSet]| {
            refusal(live, desired, "2025").map(|b| b.reason)
        };
        let running = [set("db", old, Some("1Gi"))];
        // The same, and the same size written differently: nothing refused.
        assert_eq!(reason(&running, &[set("db", old, Some("1Gi"))]), None);
        assert_eq!(reason(&running, &[set("db", old, Some("1024Mi"))]), None);
        // Nothing live yet (a new database): nothing refused.
        assert_eq!(reason(&[], &[set("db", new, Some("1Gi"))]), None);
        let cases: [(&[StatefulSet], &str); 5] = [
            // Standalone to topology: the data set goes away.
            (
                &[set("db-aggregator", old, Some("1Gi"))],
                "TopologyChangeRefused",
            ),
            // Durable to Ephemeral.
            (&[set("db", old, None)], "StorageChangeRefused"),
            // A new size (a VolumeExpansion's job) or class.
            (&[set("db", old, Some("2Gi"))], "StorageChangeRefused"),
            (
                &[{
                    let mut s = set("db", old, Some("1Gi"));
                    s.spec
                        .as_mut()
                        .unwrap()
                        .volume_claim_templates
                        .as_mut()
                        .unwrap()[0]
                        .spec
                        .as_mut()
                        .unwrap()
                        .storage_class_name = Some("fast".into());
                    s
                }],
                "StorageChangeRefused",
            ),
            // A direct edit of spec.version.
            (&[set("db", new, Some("1Gi"))], "VersionChangeRefused"),
        ];
        for (desired, want) in cases {
            assert_eq!(
                reason(&running, desired).as_deref(),
                Some(want),
                "{desired:?}"
            );
        }
        let message = refusal(&running, &[set("db", old, Some("2Gi"))], "2025")
            .unwrap()
            .message;
        assert!(
            message.contains("1Gi")
                && message.contains("2Gi")
                && message.contains("VolumeExpansion"),
            "{message}"
        );
        let message = refusal(&running, &[set("db", new, Some("1Gi"))], "2025")
            .unwrap()
            .message;
        assert!(message.contains("UpdateVersion ops request"), "{message}");
        // An ephemeral set that goes away loses nothing.
        assert_eq!(
            reason(&[set("old", old, None)], &[set("db", old, None)]),
            None
        );
        assert_eq!(bytes("1Gi"), Some(1 << 30));
        assert_eq!(bytes("500M"), Some(500_000_000));
        assert_eq!(bytes("1.5Gi"), None);
    }

    #[test]
    fn issuer_problems() {
        let issuer = |kind: &str| IssuerRef {
            name: "ca".into(),
            kind: kind.into(),
            group: "cert-manager.io".into(),
        };
        assert_eq!(
            issuer_problem(&issuer("Issuer"), "demo", &IssuerSeen::Fine),
            None
        );
        let missing = issuer_problem(&issuer("Issuer"), "demo", &IssuerSeen::Missing).unwrap();
        assert_eq!(missing.reason, REASON_ISSUER_NOT_FOUND);
        assert!(
            missing.message.starts_with(
                "spec.tls.issuerRef names Issuer \"ca\" in namespace demo, which does not exist"
            ),
            "{}",
            missing.message
        );
        let cluster =
            issuer_problem(&issuer("ClusterIssuer"), "demo", &IssuerSeen::Missing).unwrap();
        assert!(
            cluster.message.contains("ClusterIssuer \"ca\", which"),
            "{}",
            cluster.message
        );
        let seen = IssuerSeen::NotReady {
            reason: "ErrGetKeyPair".into(),
            message: "secret \"ca\" not found".into(),
        };
        let not_ready = issuer_problem(&issuer("Issuer"), "demo", &seen).unwrap();
        assert_eq!(not_ready.reason, REASON_ISSUER_NOT_READY);
        assert!(
            not_ready
                .message
                .contains("not Ready (ErrGetKeyPair: secret \"ca\" not found)"),
            "{}",
            not_ready.message
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Children;
    use api::Singlestore;
    use serde_json::json;

    fn singlestore(spec: serde_json::Value) -> Singlestore {
        let mut base = json!({"version": "8.7.21", "licenseSecret": {"name": "license"},
            "storage": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        for (k, v) in spec.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(
            json!({"apiVersion": "kubedb.com/v1alpha2", "kind": "Singlestore",
            "metadata": {"name": "sdb", "namespace": "demo", "uid": "u"}, "spec": base}),
        )
        .unwrap()
    }

    fn observed(
        missing: &[&str],
        cert_manager: bool,
    ) -> Observed<api::catalog::SinglestoreVersion> {
        let version = api::fixtures::singlestore_versions()
            .into_iter()
            .find(|v| v.metadata.name.as_deref() == Some("8.7.21"))
            .unwrap();
        Observed {
            children: Children {
                certificates: cert_manager.then(Vec::new),
                ..Children::default()
            },
            version: Ok(version),
            config_sources: Default::default(),
            missing_user_secrets: missing.iter().map(|s| s.to_string()).collect(),
            incomplete_user_secrets: Vec::new(),
            paused: false,
            unfinished_update: None,
        }
    }

    #[test]
    fn blockers_and_halted_databases() {
        let tls = json!({"tls": {"issuerRef": {"apiGroup": "cert-manager.io", "kind": "Issuer", "name": "ca"}}});
        /// StatefulSets, services and PDBs kept, or the blocker's reason.
        type Outcome = Result<[usize; 3], &'static str>;
        // (spec, missing user secrets, cert-manager served, outcome)
        let cases: [(serde_json::Value, &[&str], bool, Outcome); 6] = [
            (json!({}), &[], true, Ok([1, 2, 1])),
            (json!({}), &["license"], true, Err("SecretNotFound")),
            (tls.clone(), &[], false, Err("CertManagerNotInstalled")),
            (tls, &[], true, Ok([1, 2, 1])),
            (json!({"halted": true}), &[], true, Ok([0, 0, 0])),
            (
                json!({"topology": {"aggregator": {"replicas": 0}, "leaf": {}}}),
                &[],
                true,
                Err("InvalidSpec"),
            ),
        ];
        for (spec, missing, cert_manager, want) in cases {
            let db = singlestore(spec.clone());
            let got = desired(&db, &observed(missing, cert_manager), None);
            match (got, want) {
                (Ok(desired), Ok([sets, services, pdbs])) => {
                    assert_eq!(desired.stateful_sets.len(), sets, "{spec}");
                    assert_eq!(desired.services.len(), services, "{spec}");
                    assert_eq!(desired.pdbs.len(), pdbs, "{spec}");
                    assert_eq!(desired.generated_secrets.len(), 1, "{spec}: secrets stay");
                }
                (Err(blocker), Err(reason)) => {
                    assert_eq!(blocker.reason, reason, "{spec}: {}", blocker.message);
                }
                (got, want) => panic!("{spec}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_missing_secret_is_named_with_its_namespace() {
        let blocker =
            desired(&singlestore(json!({})), &observed(&["license"], true), None).unwrap_err();
        assert_eq!(
            blocker.message,
            "the secret license does not exist in namespace demo; create it (the license secret needs the key `password`)"
        );
    }

    #[test]
    fn a_license_secret_without_its_key_is_named() {
        let mut observed = observed(&[], true);
        observed.incomplete_user_secrets = vec![("license".into(), "password")];
        let blocker = desired(&singlestore(json!({})), &observed, None).unwrap_err();
        assert_eq!(blocker.reason, "SecretKeyNotFound");
        assert_eq!(
            blocker.message,
            "the secret license in namespace demo has no key `password` (or it is empty); add it: the pods read it from there"
        );
    }

    #[test]
    fn the_version_blocker_comes_first() {
        let mut observed = observed(&["license"], false);
        observed.version = Err(version_blocker("SinglestoreVersion", "9.9", false, &[]));
        let blocker = desired(&singlestore(json!({})), &observed, None).unwrap_err();
        assert_eq!(blocker.reason, "VersionNotFound");
    }

    #[test]
    fn the_agent_image_replaces_every_coordinator_image() {
        let cluster = singlestore(json!({"topology": {"aggregator": {}, "leaf": {}}}));
        let coordinators = |agent: Option<&str>| -> Vec<String> {
            let desired = desired(&cluster, &observed(&[], true), agent).unwrap();
            desired
                .stateful_sets
                .iter()
                .flat_map(|s| s.spec.clone().unwrap().template.spec.unwrap().containers)
                .filter(|c| c.name == api::names::singlestore::COORDINATOR_CONTAINER)
                .map(|c| c.image.unwrap())
                .collect()
        };
        let agent = "ghcr.io/kubedb-rs/db-agent:0.1.0";
        assert_eq!(coordinators(Some(agent)), [agent, agent]);
        assert_eq!(
            coordinators(None),
            [api::fixtures::SINGLESTORE_COORDINATOR_IMAGE; 2]
        );
    }

    #[test]
    fn version_blockers_name_the_version_and_the_alternatives() {
        let available = vec!["2022-cu22".to_owned(), "2025-cu0".to_owned()];
        let unknown = version_blocker("MSSQLServerVersion", "2019", false, &available);
        assert_eq!(unknown.reason, "VersionNotFound");
        assert_eq!(
            unknown.message,
            "MSSQLServerVersion \"2019\" does not exist; available versions: 2022-cu22, 2025-cu0"
        );
        let deprecated = version_blocker("SinglestoreVersion", "8.1.32", true, &[]);
        assert_eq!(deprecated.reason, "VersionDeprecated");
        assert!(
            deprecated.message.ends_with("available versions: none"),
            "{}",
            deprecated.message
        );
    }

    #[test]
    fn pinned_target_is_a_differing_non_empty_annotation() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("2022-cu22", &[], None),
            ("2022-cu22", &["2022-cu22"], None),
            ("2022-cu22", &["", "2025-cu0"], Some("2025-cu0")),
            ("2022-cu22", &["2022-cu22", "2025-cu0"], Some("2025-cu0")),
            ("8.9.3", &["8.9.3", "8.9.3"], None),
        ];
        for (spec, pins, want) in cases {
            assert_eq!(pinned_target(spec, pins), *want, "{spec} {pins:?}");
        }
    }
}
