//! SingleStore clusters: the pure decisions ([`decide`]), the statements ([`sql`]), the
//! [`backend`] that runs them over the MySQL protocol, and the [`agent`] loop.

pub mod agent;
pub mod backend;
pub mod decide;
pub mod sql;
