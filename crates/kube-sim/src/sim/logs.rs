//! Container logs written by the process runtime and read by the API server's `pods/log`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Identifies one container of one pod.
type ContainerKey = (String, String, String);

/// Shared, cheaply cloneable store of container output (stdout and stderr interleaved by line).
///
/// The process runtime appends to it; the API server serves it as `GET .../pods/<name>/log`.
#[derive(Clone, Debug, Default)]
pub struct PodLogs {
    inner: Arc<Mutex<BTreeMap<ContainerKey, Vec<u8>>>>,
}

impl PodLogs {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<ContainerKey, Vec<u8>>> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends output of a container.
    pub fn append(&self, namespace: &str, pod: &str, container: &str, bytes: &[u8]) {
        self.lock()
            .entry((namespace.to_owned(), pod.to_owned(), container.to_owned()))
            .or_default()
            .extend_from_slice(bytes);
    }

    /// The log of a container; with `container == None`, the log of the pod's first container
    /// (by name) that has one. `None` when nothing was ever logged for it.
    pub fn read(&self, namespace: &str, pod: &str, container: Option<&str>) -> Option<Vec<u8>> {
        let logs = self.lock();
        match container {
            Some(container) => logs
                .get(&(namespace.to_owned(), pod.to_owned(), container.to_owned()))
                .cloned(),
            None => logs
                .iter()
                .find(|((ns, p, _), _)| ns == namespace && p == pod)
                .map(|(_, log)| log.clone()),
        }
    }

    /// Names of the containers of a pod that have a log.
    pub fn containers(&self, namespace: &str, pod: &str) -> Vec<String> {
        self.lock()
            .keys()
            .filter(|(ns, p, _)| ns == namespace && p == pod)
            .map(|(_, _, c)| c.clone())
            .collect()
    }

    /// Forgets the logs of a pod (called once the pod object is gone).
    pub fn remove_pod(&self, namespace: &str, pod: &str) {
        self.lock()
            .retain(|(ns, p, _), _| !(ns == namespace && p == pod));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_per_container() {
        let logs = PodLogs::default();
        logs.append("ns", "p", "b", b"one\n");
        logs.append("ns", "p", "a", b"alpha\n");
        logs.append("ns", "p", "b", b"two\n");
        assert_eq!(logs.read("ns", "p", Some("b")).unwrap(), b"one\ntwo\n");
        assert_eq!(logs.read("ns", "p", None).unwrap(), b"alpha\n");
        assert_eq!(logs.containers("ns", "p"), ["a", "b"]);
        assert!(logs.read("other", "p", None).is_none());
        logs.remove_pod("ns", "p");
        assert!(logs.read("ns", "p", Some("b")).is_none());
    }
}
