//! SQL Server availability groups: the pure decisions ([`decide`]), the T-SQL the agent sends
//! ([`tsql`]), and the [`backend`] that runs it.

pub mod backend;
pub mod decide;
pub mod tsql;
