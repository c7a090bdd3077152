//! The cert-manager Certificate builder. cert-manager's types are not in k8s-openapi, so the
//! fields the provisioner writes are typed here (`cert-manager.io/v1`).

use std::collections::BTreeMap;

use api::common::{CertificateSpec as UserCertificate, TLSConfig, X509Subject};
use api::names;
use k8s_openapi::api::core::v1::TypedLocalObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::meta::child_metadata;
use crate::database::DbRef;
use crate::plan::PlanError;

/// A `cert-manager.io/v1` Certificate, as the provisioner writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// `cert-manager.io/v1`.
    pub api_version: String,
    /// `Certificate`.
    pub kind: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: CertificateSpec,
}

/// The fields of a Certificate's spec the provisioner sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSpec {
    /// Secret the certificate is issued into.
    pub secret_name: String,
    /// Common name.
    pub common_name: String,
    /// Subject.
    pub subject: X509Subject,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_addresses: Option<Vec<String>>,
    /// URI subject alternative names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uris: Option<Vec<String>>,
    /// E-mail subject alternative names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_addresses: Option<Vec<String>>,
    /// Lifetime (Go duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Renewal lead time (Go duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renew_before: Option<String>,
    /// Private key options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<PrivateKey>,
    /// Additional keystores cert-manager writes into the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keystores: Option<Keystores>,
    /// The issuer.
    pub issuer_ref: IssuerRef,
    /// Key usages.
    pub usages: Vec<String>,
    /// Labels cert-manager puts on the issued secret.
    pub secret_template: SecretTemplate,
}

/// `spec.privateKey`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivateKey {
    /// `PKCS1` or `PKCS8`.
    pub encoding: String,
}

/// `spec.keystores`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Keystores {
    /// A PKCS #12 keystore (`keystore.p12`, and `truststore.p12` when the issuer has a CA).
    pub pkcs12: Pkcs12Keystore,
}

/// `spec.keystores.pkcs12`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pkcs12Keystore {
    /// Write the keystore.
    pub create: bool,
    /// The key of a secret holding the keystore's password.
    pub password_secret_ref: SecretKeyRef,
}

/// A key of a secret in the Certificate's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key in the secret.
    pub key: String,
}

/// `spec.issuerRef`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuerRef {
    /// Issuer name.
    pub name: String,
    /// `Issuer` or `ClusterIssuer`.
    pub kind: String,
    /// API group (`cert-manager.io`).
    pub group: String,
}

/// `spec.secretTemplate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretTemplate {
    /// Labels of the issued secret.
    pub labels: BTreeMap<String, String>,
}

/// One certificate alias to request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertAlias {
    /// Alias (`server`, `client`, `endpoint`).
    pub alias: &'static str,
    /// Common name.
    pub common_name: String,
    /// DNS names.
    pub dns_names: Vec<String>,
    /// IP addresses.
    pub ip_addresses: Vec<String>,
    /// A PKCS #12 keystore in the issued secret, encrypted with the password at this secret key.
    pub pkcs12_password: Option<SecretKeyRef>,
}

/// The secret a certificate alias is issued into (the user's `secretName` or `<db>-<alias>-cert`).
pub fn cert_secret_name(db: &DbRef, tls: &TLSConfig, alias: &str) -> String {
    cert_override(tls, alias)
        .and_then(|c| c.secret_name.clone())
        .unwrap_or_else(|| names::cert_secret(&db.name, alias))
}

fn cert_override<'a>(tls: &'a TLSConfig, alias: &str) -> Option<&'a UserCertificate> {
    tls.certificates.as_ref()?.iter().find(|c| c.alias == alias)
}

/// Appends the items of `extra` that `list` does not hold yet.
fn add_missing(list: &mut Vec<String>, extra: Option<&Vec<String>>) {
    for item in extra.into_iter().flatten() {
        if !list.contains(item) {
            list.push(item.clone());
        }
    }
}

/// A cert-manager Certificate for `alias`: KubeDB's secret name and subject (organisation
/// `kubedb`, OU = alias) with the user's overrides; the issued secret gets the offshoot labels.
pub fn certificate(
    db: &DbRef,
    tls: &TLSConfig,
    alias: &CertAlias,
) -> Result<Certificate, PlanError> {
    let user = cert_override(tls, alias.alias);
    let issuer: &TypedLocalObjectReference = user
        .and_then(|c| c.issuer_ref.as_ref())
        .or(tls.issuer_ref.as_ref())
        .ok_or_else(|| PlanError::invalid("spec.tls.issuerRef is required for TLS"))?;
    let secret = cert_secret_name(db, tls, alias.alias);
    let mut dns_names = alias.dns_names.clone();
    let mut ip_addresses = alias.ip_addresses.clone();
    add_missing(&mut dns_names, user.and_then(|u| u.dns_names.as_ref()));
    add_missing(
        &mut ip_addresses,
        user.and_then(|u| u.ip_addresses.as_ref()),
    );
    let subject = user
        .and_then(|u| u.subject.clone())
        .unwrap_or_else(|| X509Subject {
            organizations: Some(vec!["kubedb".into()]),
            organizational_units: Some(vec![alias.alias.into()]),
            ..X509Subject::default()
        });
    Ok(Certificate {
        api_version: "cert-manager.io/v1".into(),
        kind: "Certificate".into(),
        metadata: child_metadata(db, &secret, &BTreeMap::new()),
        spec: CertificateSpec {
            secret_name: secret.clone(),
            common_name: alias.common_name.clone(),
            subject,
            dns_names,
            ip_addresses: (!ip_addresses.is_empty()).then_some(ip_addresses),
            uris: user.and_then(|u| u.uris.clone()),
            email_addresses: user.and_then(|u| u.email_addresses.clone()),
            duration: user.and_then(|u| u.duration.clone()),
            renew_before: user.and_then(|u| u.renew_before.clone()),
            private_key: user
                .and_then(|u| u.private_key.as_ref())
                .and_then(|k| k.encoding.clone())
                .map(|encoding| PrivateKey { encoding }),
            keystores: alias.pkcs12_password.clone().map(|password| Keystores {
                pkcs12: Pkcs12Keystore {
                    create: true,
                    password_secret_ref: password,
                },
            }),
            issuer_ref: IssuerRef {
                name: issuer.name.clone(),
                kind: issuer.kind.clone(),
                group: issuer
                    .api_group
                    .clone()
                    .unwrap_or_else(|| "cert-manager.io".into()),
            },
            usages: [
                "digital signature",
                "key encipherment",
                "server auth",
                "client auth",
            ]
            .map(String::from)
            .to_vec(),
            secret_template: SecretTemplate {
                labels: db.labels(),
            },
        },
    })
}

/// DNS names under which the database's pods and services answer.
pub fn service_dns_names(db: &DbRef, services: &[String]) -> Vec<String> {
    let ns = &db.namespace;
    let governing = names::governing_service(&db.name);
    let mut dns = Vec::new();
    for svc in services.iter().chain(std::iter::once(&governing)) {
        dns.push(svc.clone());
        dns.push(format!("{svc}.{ns}.svc"));
        dns.push(format!("{svc}.{ns}.svc.cluster.local"));
    }
    dns.push(format!("*.{governing}.{ns}.svc"));
    dns.push(format!("*.{governing}.{ns}.svc.cluster.local"));
    dns.push("localhost".to_owned());
    dns
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::common::CertificateSpec;
    use serde_json::json;

    fn db() -> DbRef {
        super::super::test_db(crate::database::DbKind::MSSQLServer, "db", "ns")
    }

    #[test]
    fn certificate_uses_kubedb_names_subject_and_overrides() {
        let tls = TLSConfig {
            issuer_ref: Some(TypedLocalObjectReference {
                api_group: Some("cert-manager.io".into()),
                kind: "Issuer".into(),
                name: "ca".into(),
            }),
            certificates: Some(vec![CertificateSpec {
                alias: "client".into(),
                secret_name: Some("custom-client".into()),
                dns_names: Some(vec!["extra.example".into()]),
                ..Default::default()
            }]),
        };
        let alias = |a| CertAlias {
            alias: a,
            common_name: "cn".into(),
            dns_names: vec!["db".into()],
            ip_addresses: vec![],
            pkcs12_password: None,
        };
        let server = certificate(&db(), &tls, &alias("server")).unwrap();
        assert_eq!(server.metadata.name.as_deref(), Some("db-server-cert"));
        let server = serde_json::to_value(server).unwrap();
        assert_eq!(server["spec"]["secretName"], "db-server-cert");
        assert_eq!(
            server["spec"]["subject"],
            json!({"organizations": ["kubedb"], "organizationalUnits": ["server"]})
        );
        assert_eq!(
            server["spec"]["issuerRef"],
            json!({"name": "ca", "kind": "Issuer", "group": "cert-manager.io"})
        );
        assert_eq!(
            server["spec"]["secretTemplate"]["labels"]["app.kubernetes.io/instance"],
            "db"
        );
        let client =
            serde_json::to_value(certificate(&db(), &tls, &alias("client")).unwrap()).unwrap();
        assert_eq!(client["spec"]["secretName"], "custom-client");
        assert_eq!(client["spec"]["dnsNames"], json!(["db", "extra.example"]));
        let none = TLSConfig::default();
        assert!(certificate(&db(), &none, &alias("server")).is_err());
    }

    #[test]
    fn dns_names_cover_services_pods_and_localhost() {
        let names = service_dns_names(&db(), &["db".to_owned()]);
        assert_eq!(
            names,
            [
                "db",
                "db.ns.svc",
                "db.ns.svc.cluster.local",
                "db-pods",
                "db-pods.ns.svc",
                "db-pods.ns.svc.cluster.local",
                "*.db-pods.ns.svc",
                "*.db-pods.ns.svc.cluster.local",
                "localhost",
            ]
        );
    }

    #[test]
    fn optional_fields_are_left_out_unless_set() {
        let tls = TLSConfig {
            issuer_ref: Some(TypedLocalObjectReference {
                api_group: None,
                kind: "ClusterIssuer".into(),
                name: "ca".into(),
            }),
            certificates: None,
        };
        let alias = CertAlias {
            alias: "client",
            common_name: "sa".into(),
            dns_names: vec![],
            ip_addresses: vec![],
            pkcs12_password: None,
        };
        let spec = serde_json::to_value(certificate(&db(), &tls, &alias).unwrap()).unwrap()["spec"]
            .clone();
        let keys: Vec<&str> = spec
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "commonName",
                "dnsNames",
                "issuerRef",
                "secretName",
                "secretTemplate",
                "subject",
                "usages"
            ]
        );
        assert_eq!(
            spec["issuerRef"],
            json!({"name": "ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
        );
    }

    #[test]
    fn a_pkcs12_keystore_when_asked() {
        let tls = TLSConfig {
            issuer_ref: Some(TypedLocalObjectReference {
                api_group: None,
                kind: "Issuer".into(),
                name: "ca".into(),
            }),
            certificates: None,
        };
        let alias = CertAlias {
            alias: "endpoint",
            common_name: "db-endpoint".into(),
            dns_names: vec![],
            ip_addresses: vec![],
            pkcs12_password: Some(SecretKeyRef {
                name: "db-master-key".into(),
                key: "password".into(),
            }),
        };
        let spec = serde_json::to_value(certificate(&db(), &tls, &alias).unwrap()).unwrap()["spec"]
            .clone();
        assert_eq!(
            spec["keystores"],
            json!({"pkcs12": {"create": true, "passwordSecretRef": {"name": "db-master-key", "key": "password"}}})
        );
        assert_eq!(spec["secretName"], "db-endpoint-cert");
    }
}
