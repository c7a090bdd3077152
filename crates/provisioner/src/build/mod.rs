//! Pure builders: from a database object and its resolved Version to every child, as typed
//! objects. No I/O here; everything is covered by table tests and the golden files of
//! `tests/golden.rs`.
//!
//! One module per kind of child object ([`statefulset`], [`service`], [`secret`], [`pdb`],
//! [`certificate`]; [`rbac`] for the agent pods' ServiceAccount, Role and RoleBinding), the shared pieces of pods ([`pod`]) and metadata ([`meta`]), the overlay of
//! the user's templates ([`merge`]), and one module per database kind ([`mssql`],
//! [`singlestore`]) that makes the database-specific choices and fills a
//! [`crate::plan::Desired`].

pub mod certificate;
pub mod merge;
pub mod meta;
pub mod mssql;
pub mod pdb;
pub mod pod;
pub mod rbac;
pub mod secret;
pub mod service;
pub mod singlestore;
pub mod statefulset;

/// A database identity for the builders' table tests: `name` of `kind` in `namespace`, UID
/// `uid-123456`.
#[cfg(test)]
pub(crate) fn test_db(
    kind: crate::database::DbKind,
    name: &str,
    namespace: &str,
) -> crate::database::DbRef {
    crate::database::DbRef {
        kind,
        name: name.into(),
        namespace: namespace.into(),
        uid: "uid-123456".into(),
    }
}
