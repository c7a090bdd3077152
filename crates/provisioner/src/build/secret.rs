//! Secrets: the operator-rendered configuration secret (applied) and the secrets with
//! credentials generated once (created when missing, never changed).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use super::meta::child_metadata;
use crate::database::DbRef;
use crate::plan::{GeneratedSecret, PlanError};

/// A secret with credentials generated once (`kubernetes.io/basic-auth` with `username`).
pub fn basic_auth_secret(db: &DbRef, name: &str, username: &str) -> GeneratedSecret {
    GeneratedSecret {
        name: name.to_owned(),
        type_: "kubernetes.io/basic-auth".to_owned(),
        fixed: BTreeMap::from([("username".to_owned(), username.to_owned())]),
        random_keys: vec!["password".to_owned()],
        metadata: child_metadata(db, name, &BTreeMap::new()),
    }
}

/// An Opaque secret with one random key.
pub fn random_secret(db: &DbRef, name: &str, key: &str) -> GeneratedSecret {
    GeneratedSecret {
        name: name.to_owned(),
        type_: "Opaque".to_owned(),
        fixed: BTreeMap::new(),
        random_keys: vec![key.to_owned()],
        metadata: child_metadata(db, name, &BTreeMap::new()),
    }
}

/// Annotation of a rendered configuration secret: the digest of its data. The provisioner's
/// cache keeps no secret values, so a config secret is compared by this annotation, not by its
/// data (without it, every reconcile re-applied every config secret).
pub const CONFIG_DIGEST: &str = "kubedb.com/config-digest";

/// `sha256:<hex>` of `data`'s keys and values, each length-prefixed (pure, stable).
pub fn config_digest(data: &BTreeMap<String, String>) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    for (key, value) in data {
        for part in [key, value] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
    }
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The operator-rendered configuration secret: the user's `configuration.secretName` data
/// overlaid with `configuration.inline`.
pub fn config_secret(db: &DbRef, name: &str, data: &BTreeMap<String, String>) -> Secret {
    let mut metadata = child_metadata(db, name, &BTreeMap::new());
    metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(CONFIG_DIGEST.to_owned(), config_digest(data));
    Secret {
        metadata,
        type_: Some("Opaque".into()),
        string_data: Some(data.clone()),
        ..Secret::default()
    }
}

/// Renders configuration: the user's secret data (when present) overlaid with the inline map.
/// `None` when neither is set. A named secret that does not exist is an error.
pub fn render_configuration(
    configuration: Option<&api::common::ConfigurationSpec>,
    sources: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<Option<BTreeMap<String, String>>, PlanError> {
    let Some(configuration) = configuration else {
        return Ok(None);
    };
    let mut data = BTreeMap::new();
    if let Some(name) = &configuration.secret_name {
        let source = sources.get(name).ok_or_else(|| PlanError {
            reason: "ConfigSecretNotFound",
            message: format!("the configuration secret {name:?} does not exist"),
        })?;
        data.extend(source.clone());
    }
    if let Some(inline) = &configuration.inline {
        data.extend(inline.clone());
    }
    Ok((!data.is_empty()).then_some(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn db() -> DbRef {
        super::super::test_db(crate::database::DbKind::Singlestore, "db", "ns")
    }

    #[test]
    fn generated_secrets() {
        let cases = [
            (
                basic_auth_secret(&db(), "db-auth", "root"),
                "kubernetes.io/basic-auth",
                vec![("username", "root")],
            ),
            (
                random_secret(&db(), "db-master-key", "password"),
                "Opaque",
                vec![],
            ),
        ];
        for (secret, type_, fixed) in cases {
            assert_eq!(secret.type_, type_);
            assert_eq!(secret.random_keys, ["password"]);
            let fixed: BTreeMap<String, String> = fixed
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            assert_eq!(secret.fixed, fixed);
            assert_eq!(secret.metadata.name.as_deref(), Some(secret.name.as_str()));
            assert_eq!(
                secret.metadata.owner_references.unwrap()[0].uid,
                "uid-123456"
            );
        }
    }

    #[test]
    fn config_secret_carries_string_data() {
        let data = BTreeMap::from([("a.cnf".to_owned(), "x = 1\n".to_owned())]);
        let secret = serde_json::to_value(config_secret(&db(), "db-123456", &data)).unwrap();
        assert_eq!(secret["apiVersion"], "v1");
        assert_eq!(secret["kind"], "Secret");
        assert_eq!(secret["type"], "Opaque");
        assert_eq!(secret["stringData"], json!({"a.cnf": "x = 1\n"}));
        assert!(secret.get("data").is_none());
    }

    #[test]
    fn configuration_rendering() {
        let sources = BTreeMap::from([(
            "user-conf".to_owned(),
            BTreeMap::from([
                ("mssql.conf".to_owned(), "[a]\n".to_owned()),
                ("x".to_owned(), "1".to_owned()),
            ]),
        )]);
        let spec =
            |secret: Option<&str>, inline: Option<(&str, &str)>| api::common::ConfigurationSpec {
                secret_name: secret.map(str::to_owned),
                inline: inline.map(|(k, v)| BTreeMap::from([(k.to_owned(), v.to_owned())])),
            };
        assert_eq!(render_configuration(None, &sources), Ok(None));
        let both = render_configuration(
            Some(&spec(Some("user-conf"), Some(("mssql.conf", "[b]\n")))),
            &sources,
        )
        .unwrap()
        .unwrap();
        assert_eq!(both["mssql.conf"], "[b]\n", "inline wins");
        assert_eq!(both["x"], "1");
        let missing = render_configuration(Some(&spec(Some("nope"), None)), &sources).unwrap_err();
        assert_eq!(missing.reason, "ConfigSecretNotFound");
    }
}
