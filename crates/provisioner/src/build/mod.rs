//! Pure builders: from a database object and its resolved Version to the JSON of every child.
//! No I/O here; everything is covered by table tests.

pub mod common;
pub mod mssql;
pub mod singlestore;
