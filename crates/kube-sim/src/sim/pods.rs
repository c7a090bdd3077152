//! Pod predicates shared by the controllers.

use k8s_openapi::api::core::v1::Pod;

/// `deletionTimestamp` is set.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conds| {
            conds
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// Phase `Running` and `Ready`, the health notion of the StatefulSet controller.
pub fn is_running_and_ready(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && is_ready(pod)
}

/// Ready and not terminating: what PDBs count as healthy.
pub fn is_healthy(pod: &Pod) -> bool {
    is_ready(pod) && !is_terminating(pod)
}
