//! kube-sim: an embedded, in-memory Kubernetes API server with simulated controllers.
//!
//! Start one with [`KubeSim::start`] and talk to it with [`KubeSim::client`], kubectl or helm
//! (through [`KubeSim::kubeconfig_path`]). See docs/testing.md for what is served and how it
//! differs from a real API server.

pub mod accounting;
pub mod cluster;
pub mod db;
mod defaults;
pub mod error;
pub mod events;
pub mod faults;
mod gc;
pub mod meta;
pub mod patch;
mod patch_adapter;
pub mod patching;
pub mod registry;
pub mod schema;
mod schema_adapter;
pub mod selector;
pub mod server;
pub mod sim;
pub mod store;
mod subresources;
mod validation;

pub use accounting::RequestCount;
pub use faults::{FaultSpec, FaultStatus};
pub use server::{KubeSim, KubeSimOptions};
