//! Following `status.phase` of many objects through watches, to time convergence without
//! polling the API server (polls would add load the operators' figures do not cause).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::watcher;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The last seen phase of every object, keyed by `<plural>/<name>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Phases(BTreeMap<String, String>);

impl Phases {
    /// Records an object's phase (an object without one is recorded as "").
    pub fn set(&mut self, key: String, phase: Option<String>) {
        self.0.insert(key, phase.unwrap_or_default());
    }

    /// Objects in `phase`.
    pub fn count(&self, phase: &str) -> usize {
        self.0.values().filter(|p| *p == phase).count()
    }

    /// Keys (`<plural>/<name>`) of the objects in `phase`.
    pub fn in_phase<'a>(&'a self, phase: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(_, p)| *p == phase)
            .map(|(k, _)| k.as_str())
    }

    /// The phase of one object.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// "Ready=990, Provisioning=10" (objects without a phase as "none").
    pub fn describe(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for phase in self.0.values() {
            let name = if phase.is_empty() { "none" } else { phase };
            *counts.entry(name).or_default() += 1;
        }
        if counts.is_empty() {
            return "no objects".to_owned();
        }
        counts
            .iter()
            .map(|(p, n)| format!("{p}={n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How a wait ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Time from the reference instant until the condition held; `None` if it never did.
    pub elapsed: Option<Duration>,
    /// The phases at the end.
    pub phases: Phases,
}

/// Watches of `status.phase` of several resources in one namespace.
pub struct PhaseWatch {
    rx: mpsc::UnboundedReceiver<(String, Option<String>)>,
    tasks: Vec<JoinHandle<()>>,
    phases: Phases,
}

fn phase_of(obj: &DynamicObject) -> Option<String> {
    obj.data
        .get("status")?
        .get("phase")?
        .as_str()
        .map(str::to_owned)
}

impl PhaseWatch {
    /// Starts one watch per resource.
    pub fn start(client: &kube::Client, namespace: &str, resources: &[ApiResource]) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let tasks = resources
            .iter()
            .map(|resource| {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), namespace, resource);
                let plural = resource.plural.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut events = watcher(api, watcher::Config::default()).boxed();
                    while let Some(event) = events.next().await {
                        let objects = match event {
                            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => vec![o],
                            Ok(_) => Vec::new(),
                            Err(err) => {
                                eprintln!("bench: watch of {plural} failed (retrying): {err}");
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                Vec::new()
                            }
                        };
                        for o in objects {
                            let key =
                                format!("{plural}/{}", o.metadata.name.as_deref().unwrap_or(""));
                            if tx.send((key, phase_of(&o))).is_err() {
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        PhaseWatch {
            rx,
            tasks,
            phases: Phases::default(),
        }
    }

    /// Waits until `done` holds for the phases, or until `progress` (for example the number of
    /// Ready objects) has not grown for `stall`, or until `limit` after `since`. Elapsed time is
    /// measured from `since`.
    pub async fn wait(
        &mut self,
        since: Instant,
        stall: Duration,
        limit: Duration,
        progress: impl Fn(&Phases) -> usize,
        done: impl Fn(&Phases) -> bool,
    ) -> Outcome {
        let deadline = since + limit;
        let mut best = progress(&self.phases);
        let mut best_at = Instant::now();
        loop {
            if done(&self.phases) {
                return Outcome {
                    elapsed: Some(since.elapsed()),
                    phases: self.phases.clone(),
                };
            }
            let now = Instant::now();
            let give_up = deadline.min(best_at + stall);
            if now >= give_up {
                break;
            }
            match tokio::time::timeout(give_up - now, self.rx.recv()).await {
                Ok(Some((key, phase))) => {
                    self.phases.set(key, phase);
                    // Drain what is already queued before checking again.
                    while let Ok((key, phase)) = self.rx.try_recv() {
                        self.phases.set(key, phase);
                    }
                    let current = progress(&self.phases);
                    if current > best {
                        best = current;
                        best_at = Instant::now();
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        Outcome {
            elapsed: None,
            phases: self.phases.clone(),
        }
    }
}

impl Drop for PhaseWatch {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_count_and_describe() {
        let mut p = Phases::default();
        assert_eq!(p.describe(), "no objects");
        p.set("mssqlservers/a".into(), Some("Ready".into()));
        p.set("mssqlservers/b".into(), Some("Provisioning".into()));
        p.set("singlestores/c".into(), None);
        assert_eq!(p.count("Ready"), 1);
        assert_eq!(p.describe(), "Provisioning=1, Ready=1, none=1");
        p.set("mssqlservers/b".into(), Some("Ready".into()));
        assert_eq!(p.count("Ready"), 2);
        assert_eq!(
            p.in_phase("Ready").collect::<Vec<_>>(),
            ["mssqlservers/a", "mssqlservers/b"]
        );
        assert_eq!(p.in_phase("").collect::<Vec<_>>(), ["singlestores/c"]);
        assert_eq!(p.get("singlestores/c"), Some(""));
        assert_eq!(p.get("x"), None);
    }

    #[test]
    fn phase_is_read_from_status() {
        let with: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "kubedb.com/v1alpha2", "kind": "MSSQLServer",
            "metadata": { "name": "a" }, "status": { "phase": "Ready" }
        }))
        .unwrap();
        assert_eq!(phase_of(&with).as_deref(), Some("Ready"));
        let without: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "kubedb.com/v1alpha2", "kind": "MSSQLServer", "metadata": { "name": "a" }
        }))
        .unwrap();
        assert_eq!(phase_of(&without), None);
    }

    #[tokio::test]
    async fn wait_returns_when_done_or_when_stalled() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut w = PhaseWatch {
            rx,
            tasks: Vec::new(),
            phases: Phases::default(),
        };
        tx.send(("k/a".to_owned(), Some("Ready".to_owned())))
            .unwrap();
        let start = Instant::now();
        let ready = |p: &Phases| p.count("Ready");
        let ok = w
            .wait(
                start,
                Duration::from_secs(5),
                Duration::from_secs(5),
                ready,
                |p| p.count("Ready") == 1,
            )
            .await;
        assert!(ok.elapsed.is_some());
        // Changes that are not progress (a phase other than Ready) do not keep the wait alive:
        // it gives up after the stall period, not the limit.
        let tx2 = tx.clone();
        let chatter = tokio::spawn(async move {
            for i in 0..100 {
                let _ = tx2.send((format!("k/b{i}"), Some("Provisioning".to_owned())));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let stalled = w
            .wait(
                Instant::now(),
                Duration::from_millis(100),
                Duration::from_secs(30),
                ready,
                |p| p.count("Ready") == 2,
            )
            .await;
        chatter.abort();
        assert_eq!(stalled.elapsed, None);
        assert_eq!(stalled.phases.count("Ready"), 1);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
