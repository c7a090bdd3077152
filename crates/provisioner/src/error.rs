//! Errors of a reconcile, with a bounded category for metrics and logs: the shared
//! [`operator_common::error`] model, re-exported under the provisioner's historical path.

pub use operator_common::error::{Error, Result};
