//! The databases' side of the simulation, kept apart from the Kubernetes side (`crate::sim`).
//!
//! Kubernetes components are simulated in `sim`; this module simulates what runs *inside* the
//! database containers, so that the product's own in-pod agent (`db-agent`, started through
//! `--run-image`) has something real to talk to. It never does the product's work: it does not
//! elect, label or fail over anything. It keeps the state a database server would keep (set-up
//! objects, the local copy of an availability group or of a cluster's metadata, database replica
//! states, partitions), refuses what the server refuses, and answers over the server's own wire
//! protocol.
//!
//! - [`tds`]: the server side of TDS 7.4.
//! - [`mssql`]: SQL Server instances of availability-group pods, on `<pod IP>:1433`.
//! - [`mysql`]: the server side of the MySQL client/server protocol.
//! - [`singlestore`]: SingleStore nodes of clustered Singlestores' pods, on `<pod IP>:3306`.

pub mod mssql;
pub mod mysql;
pub mod singlestore;
pub mod tds;
