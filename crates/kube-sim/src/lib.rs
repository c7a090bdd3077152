//! kube-sim: an embedded, in-memory Kubernetes API server with simulated controllers.

pub mod patch;
pub mod schema;
pub mod sim;
