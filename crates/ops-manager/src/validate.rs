//! Fail-fast validation of a Pending request against its database and the catalog (pure).

use api::VersionObject;
use api::constraints::{UpdateError, check_update};
use api::ops::OpsRequestType;

use crate::model::{DbView, RequestView};

/// Why a request is rejected: `reason` goes into the condition's reason and the Warning Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// CamelCase reason naming the problem.
    pub reason: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl Rejection {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Reasons of a rejected request.
pub mod reasons {
    /// The request type is not implemented.
    pub const NOT_SUPPORTED: &str = "NotSupported";
    /// `spec.timeout` does not parse.
    pub const INVALID_TIMEOUT: &str = "InvalidTimeout";
    /// The database does not exist.
    pub const DATABASE_NOT_FOUND: &str = "DatabaseNotFound";
    /// `spec.updateVersion.targetVersion` is missing.
    pub const TARGET_VERSION_MISSING: &str = "TargetVersionMissing";
    /// The target Version object does not exist.
    pub const VERSION_NOT_FOUND: &str = "VersionNotFound";
    /// The target Version is deprecated.
    pub const VERSION_DEPRECATED: &str = "VersionDeprecated";
    /// The target equals the current version.
    pub const SAME_VERSION: &str = "SameVersion";
    /// The current version's Version object does not exist.
    pub const CURRENT_VERSION_NOT_FOUND: &str = "CurrentVersionNotFound";
    /// The current version's updateConstraints do not allow the target.
    pub const UPDATE_NOT_ALLOWED: &str = "UpdateNotAllowed";
    /// The catalog cannot be evaluated (unparsable version or constraint).
    pub const INVALID_CATALOG: &str = "InvalidCatalog";
}

/// Validates `request` (reference §4.3, §5.1 and issue 6): supported type, parsable timeout,
/// existing database, and for UpdateVersion a target that exists, is not deprecated, differs from
/// the current version and is allowed by the current Version's `updateConstraints`.
pub fn validate<V: VersionObject>(
    request: &RequestView,
    db: Option<&DbView>,
    versions: &[V],
) -> Result<(), Rejection> {
    use reasons::*;
    let kind = request.kind;
    if request.op_type != OpsRequestType::UpdateVersion {
        return Err(Rejection::new(
            NOT_SUPPORTED,
            format!(
                "{} type {} is not supported yet; this ops-manager implements UpdateVersion",
                kind.ops_kind(),
                request.op_type
            ),
        ));
    }
    if let Err(err) = &request.timeout {
        return Err(Rejection::new(INVALID_TIMEOUT, err.clone()));
    }
    let Some(db) = db else {
        return Err(Rejection::new(
            DATABASE_NOT_FOUND,
            format!(
                "spec.databaseRef {}/{}, is invalid or not found: no {} of that name",
                request.namespace,
                request.database,
                kind.as_str()
            ),
        ));
    };
    let Some(target_name) = request.target_version.as_deref().filter(|t| !t.is_empty()) else {
        return Err(Rejection::new(
            TARGET_VERSION_MISSING,
            "spec.updateVersion.targetVersion is required for type UpdateVersion",
        ));
    };
    let available = || {
        let mut names: Vec<String> = versions.iter().map(V::object_name).collect();
        names.sort();
        names.join(", ")
    };
    let Some(target) = versions.iter().find(|v| v.object_name() == target_name) else {
        return Err(Rejection::new(
            VERSION_NOT_FOUND,
            format!(
                "target version {target_name:?} not found: no {} of that name; available: [{}]",
                V::KIND,
                available()
            ),
        ));
    };
    if target.is_deprecated() {
        return Err(Rejection::new(
            VERSION_DEPRECATED,
            format!(
                "target version {target_name:?} is deprecated ({}.spec.deprecated is true)",
                V::KIND
            ),
        ));
    }
    if db.version == target_name {
        return Err(Rejection::new(
            SAME_VERSION,
            format!(
                "{} {}/{} already runs version {target_name:?}; nothing to update",
                kind.as_str(),
                request.namespace,
                db.name
            ),
        ));
    }
    check_update(&db.version, target_name, versions).map_err(|err| {
        let reason = match &err {
            UpdateError::CurrentNotFound { .. } => CURRENT_VERSION_NOT_FOUND,
            UpdateError::TargetNotFound { .. } => VERSION_NOT_FOUND,
            UpdateError::Constraint(_) => INVALID_CATALOG,
            UpdateError::Deprecated { .. } => VERSION_DEPRECATED,
            UpdateError::Denied { .. } => UPDATE_NOT_ALLOWED,
        };
        Rejection::new(reason, err.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{db, request};
    use api::MSSQLServerVersion;

    fn catalog() -> Vec<MSSQLServerVersion> {
        let mut versions = api::fixtures::mssql_versions();
        let mut old = versions[0].clone();
        old.metadata.name = Some("2022-cu10".into());
        old.spec.version = "2022-cu10".into();
        old.spec.deprecated = Some(true);
        versions.push(old);
        versions
    }

    #[test]
    fn rejections_name_the_problem() {
        let versions = catalog();
        type Case = (
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
            Result<(), &'static str>,
        );
        let cases: Vec<Case> = vec![
            ("ok", Some("2022-cu22"), Some("2025-cu0"), Ok(())),
            (
                "missing db",
                None,
                Some("2025-cu0"),
                Err(reasons::DATABASE_NOT_FOUND),
            ),
            (
                "unknown",
                Some("2022-cu22"),
                Some("2099-cu1"),
                Err(reasons::VERSION_NOT_FOUND),
            ),
            (
                "deprecated",
                Some("2022-cu22"),
                Some("2022-cu10"),
                Err(reasons::VERSION_DEPRECATED),
            ),
            (
                "denied downgrade",
                Some("2025-cu0"),
                Some("2022-cu22"),
                Err(reasons::UPDATE_NOT_ALLOWED),
            ),
            (
                "same",
                Some("2022-cu22"),
                Some("2022-cu22"),
                Err(reasons::SAME_VERSION),
            ),
            (
                "unknown current",
                Some("2019-cu1"),
                Some("2025-cu0"),
                Err(reasons::CURRENT_VERSION_NOT_FOUND),
            ),
            (
                "no target",
                Some("2022-cu22"),
                None,
                Err(reasons::TARGET_VERSION_MISSING),
            ),
        ];
        for (what, current, target, expected) in cases {
            let mut req = request("r", 0);
            req.target_version = target.map(str::to_owned);
            let db = current.map(|v| db(v, false));
            let got = validate(&req, db.as_ref(), &versions).map_err(|r| r.reason);
            assert_eq!(got, expected, "{what}");
        }
    }

    #[test]
    fn messages_are_specific() {
        let versions = catalog();
        let mut req = request("r", 0);
        req.target_version = Some("2022-cu22".into());
        let err = validate(&req, Some(&db("2025-cu0", false)), &versions).unwrap_err();
        assert!(
            err.message.contains("2025-cu0") && err.message.contains("denied"),
            "{}",
            err.message
        );
        req.target_version = Some("nope".into());
        let err = validate(&req, Some(&db("2022-cu22", false)), &versions).unwrap_err();
        assert!(
            err.message.contains("available: [2022-cu10, 2022-cu12"),
            "{}",
            err.message
        );
        let err = validate(&req, None, &versions).unwrap_err();
        assert!(err.message.contains("demo/db"), "{}", err.message);
    }

    #[test]
    fn other_types_are_not_supported_yet() {
        let mut req = request("r", 0);
        req.op_type = OpsRequestType::Restart;
        let err = validate(&req, Some(&db("2022-cu22", false)), &catalog()).unwrap_err();
        assert_eq!(err.reason, reasons::NOT_SUPPORTED);
        assert!(
            err.message.contains("Restart is not supported yet"),
            "{}",
            err.message
        );
    }

    #[test]
    fn bad_timeout_is_rejected() {
        let mut req = request("r", 0);
        req.timeout = Err("spec.timeout: invalid duration \"5x\"".into());
        let err = validate(&req, Some(&db("2022-cu22", false)), &catalog()).unwrap_err();
        assert_eq!(err.reason, reasons::INVALID_TIMEOUT);
    }
}
