//! Update constraints evaluated against the canonical catalog (reference §4.3/§4.4).

use api::catalog::{MSSQLServerVersion, SinglestoreVersion, UpdateConstraints};
use api::constraints::{ConstraintError, ListKind, UpdateError, allowed_targets, check_update};
use api::fixtures::{mssql_versions, singlestore_versions};

const MSSQL: [&str; 6] = [
    "2022-cu12",
    "2022-cu14",
    "2022-cu16",
    "2022-cu19",
    "2022-cu22",
    "2025-cu0",
];
const SDB: [&str; 6] = ["8.1.32", "8.5.7", "8.5.30", "8.7.10", "8.7.21", "8.9.3"];

#[test]
fn every_mssql_cu_may_move_to_every_later_or_equal_cu() {
    let catalog = mssql_versions();
    for (i, from) in MSSQL.iter().enumerate() {
        for (j, to) in MSSQL.iter().enumerate() {
            let result = check_update(from, to, &catalog);
            if j >= i {
                assert!(
                    result.is_ok(),
                    "{from} -> {to} should be allowed: {result:?}"
                );
            } else {
                assert!(
                    matches!(result, Err(UpdateError::Denied { .. })),
                    "{from} -> {to} should be denied: {result:?}"
                );
            }
        }
    }
}

#[test]
fn documented_mssql_examples() {
    let catalog = mssql_versions();
    assert_eq!(check_update("2022-cu12", "2025-cu0", &catalog), Ok(()));
    assert_eq!(check_update("2022-cu12", "2022-cu14", &catalog), Ok(()));
    assert_eq!(check_update("2022-cu22", "2025-cu0", &catalog), Ok(()));
    let denied = check_update("2025-cu0", "2022-cu22", &catalog).unwrap_err();
    assert_eq!(
        denied,
        UpdateError::Denied {
            kind: "MSSQLServerVersion",
            current: "2025-cu0".into(),
            target: "2022-cu22".into(),
            allowed: vec!["2025-cu0".into()],
        }
    );
    let message = denied.to_string();
    assert!(message.contains("allowed targets: [2025-cu0]"), "{message}");
}

#[test]
fn every_singlestore_allowlist() {
    let catalog = singlestore_versions();
    for (i, from) in SDB.iter().enumerate() {
        let allowed = allowed_targets(
            catalog.iter().find(|v| v.spec.version == *from).unwrap(),
            &catalog,
        )
        .unwrap();
        let expected: Vec<String> = SDB[i..].iter().map(|s| s.to_string()).collect();
        assert_eq!(allowed, expected, "allowed targets of {from}");
    }
    assert_eq!(check_update("8.7.21", "8.9.3", &catalog), Ok(()));
    assert!(matches!(
        check_update("8.9.3", "8.7.21", &catalog),
        Err(UpdateError::Denied { .. })
    ));
}

#[test]
fn singlestore_rejects_deprecated_targets_but_mssql_does_not() {
    let mut sdb = singlestore_versions();
    sdb.iter_mut()
        .find(|v| v.spec.version == "8.9.3")
        .unwrap()
        .spec
        .deprecated = Some(true);
    assert!(matches!(
        check_update("8.7.21", "8.9.3", &sdb),
        Err(UpdateError::Deprecated { .. })
    ));
    let mut ms = mssql_versions();
    ms.last_mut().unwrap().spec.deprecated = Some(true);
    assert_eq!(check_update("2022-cu22", "2025-cu0", &ms), Ok(()));
}

fn mssql_version(name: &str, version: &str, allow: &[&str], deny: &[&str]) -> MSSQLServerVersion {
    let mut v = mssql_versions().remove(0);
    v.metadata.name = Some(name.into());
    v.spec.version = version.into();
    v.spec.update_constraints = Some(UpdateConstraints {
        allowlist: (!allow.is_empty()).then(|| allow.iter().map(|s| s.to_string()).collect()),
        denylist: (!deny.is_empty()).then(|| deny.iter().map(|s| s.to_string()).collect()),
    });
    v
}

#[test]
fn cu9_sorts_before_cu12_unlike_kubedb() {
    // KubeDB (Masterminds) compares "cu9" and "cu12" as text, so cu9 would count as newer than
    // cu12 and ">= 2022-cu12" would wrongly allow 2022-cu9. We compare the digits numerically.
    let catalog = vec![
        mssql_version("2022-cu9", "2022-cu9", &[">= 2022-cu9, < 2025-cu1"], &[]),
        mssql_version("2022-cu12", "2022-cu12", &[">= 2022-cu12, < 2025-cu1"], &[]),
    ];
    assert_eq!(check_update("2022-cu9", "2022-cu12", &catalog), Ok(()));
    assert!(matches!(
        check_update("2022-cu12", "2022-cu9", &catalog),
        Err(UpdateError::Denied { .. })
    ));
    assert_eq!(
        allowed_targets(&catalog[0], &catalog).unwrap(),
        vec!["2022-cu9".to_string(), "2022-cu12".to_string()],
        "ordered numerically"
    );
}

#[test]
fn denylist_hit_is_denied() {
    let mut catalog = mssql_versions();
    catalog[0] = mssql_version(
        "2022-cu12",
        "2022-cu12",
        &[">= 2022-cu12, < 2025-cu1"],
        &[">= 2022-cu16, < 2022-cu22"],
    );
    let allowed = allowed_targets(&catalog[0], &catalog).unwrap();
    assert_eq!(
        allowed,
        vec!["2022-cu12", "2022-cu14", "2022-cu22", "2025-cu0"]
    );

    catalog[0] = mssql_version("2022-cu12", "2022-cu12", &[], &["= 2022.0.0-cu14"]);
    let err = check_update("2022-cu12", "2022-cu14", &catalog).unwrap_err();
    match err {
        UpdateError::Denied { allowed, .. } => {
            assert!(!allowed.contains(&"2022-cu14".to_string()));
            assert!(
                allowed.contains(&"2022-cu12".to_string()),
                "empty allowlist allows all others"
            );
            assert!(allowed.contains(&"2025-cu0".to_string()));
        }
        other => panic!("expected Denied, got {other:?}"),
    }
}

#[test]
fn malformed_constraint_names_the_object_and_list() {
    let mut catalog = mssql_versions();
    catalog[0] = mssql_version(
        "2022-cu12",
        "2022-cu12",
        &[">= 2022-cu12,, < 2025-cu1"],
        &[],
    );
    let err = check_update("2022-cu12", "2022-cu14", &catalog).unwrap_err();
    match &err {
        UpdateError::Constraint(ConstraintError::MalformedConstraint {
            kind, name, list, ..
        }) => {
            assert_eq!(*kind, "MSSQLServerVersion");
            assert_eq!(name, "2022-cu12");
            assert_eq!(*list, ListKind::Allowlist);
        }
        other => panic!("expected MalformedConstraint, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("MSSQLServerVersion \"2022-cu12\""),
        "{message}"
    );
    assert!(message.contains("allowlist"), "{message}");
}

#[test]
fn version_object_without_spec_version_fails_the_check() {
    let mut catalog: Vec<SinglestoreVersion> = singlestore_versions();
    catalog[2].spec.version = String::new();
    let err = check_update("8.7.21", "8.9.3", &catalog).unwrap_err();
    assert_eq!(
        err,
        UpdateError::Constraint(ConstraintError::MissingVersion {
            kind: "SinglestoreVersion",
            name: "8.5.30".into(),
        })
    );
    assert!(
        err.to_string()
            .contains("SinglestoreVersion \"8.5.30\" has no spec.version")
    );
}

#[test]
fn unparsable_spec_version_names_the_object() {
    let mut catalog = mssql_versions();
    catalog[1].spec.version = "2022 CU14".into();
    let err = check_update("2022-cu12", "2022-cu16", &catalog).unwrap_err();
    assert!(
        matches!(&err, UpdateError::Constraint(ConstraintError::InvalidVersion { name, .. }) if name == "2022-cu14"),
        "{err:?}"
    );
}

#[test]
fn unknown_current_or_target() {
    let catalog = mssql_versions();
    assert!(matches!(
        check_update("2019-cu1", "2022-cu12", &catalog),
        Err(UpdateError::CurrentNotFound { .. })
    ));
    assert!(matches!(
        check_update("2022-cu12", "2030-cu1", &catalog),
        Err(UpdateError::TargetNotFound { .. })
    ));
}

#[test]
fn masterminds_short_versions_in_constraints_are_wildcards() {
    // As in Masterminds (and so KubeDB): "2022-cu14" has no minor part, so in a constraint it
    // is `2022.x` with pre-release cu14: `=` becomes `~` and `<=` covers all of 2022.
    let catalog = vec![
        mssql_version("2022-cu14", "2022-cu14", &[], &["= 2022-cu14"]),
        mssql_version("2022-cu22", "2022-cu22", &[], &[]),
        mssql_version("2025-cu0", "2025-cu0", &[], &[]),
    ];
    assert_eq!(
        allowed_targets(&catalog[0], &catalog).unwrap(),
        vec!["2025-cu0"]
    );
}
