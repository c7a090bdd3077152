//! `db-agent`: the in-pod agent of KubeDB SQL Server availability groups. See `docs/agent.md`.

pub mod agent;
pub mod config;
pub mod http;
pub mod kube;
pub mod metrics;
pub mod mssql;
pub mod run;
pub mod sdb;
