//! Publishing `events.k8s.io/v1` Events about the objects an operator manages.
//!
//! Events are best-effort: a failure to publish is logged and never fails a reconcile. Callers
//! decide *when* to publish (on transitions only); this module only decides *how*.
//!
//! An Event that repeats one published in the last [`SERIES_TTL`] (same type, reason, action,
//! regarding and related object) continues it as a series (`series.count`, `lastObservedTime`)
//! instead of adding an Event, as client-go and kube-runtime's recorder do. Unlike kube-runtime's
//! recorder, which keeps a full copy of every Event published in that window (about 16 MiB after
//! 1,000 databases were created at once, in a table that never shrinks), only the name and count
//! of at most [`SERIES_CAPACITY`] Events are remembered.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};

/// How long a published Event can be continued as a series (kube-runtime and client-go use 6
/// minutes too).
pub const SERIES_TTL: Duration = Duration::from_secs(6 * 60);

/// How many recently published Events are remembered for series (client-go's cache holds 4,096).
pub const SERIES_CAPACITY: usize = 4096;

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something went wrong or needs attention.
    Warning,
}

impl EventType {
    /// As spelled in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// Publishes Events with a fixed reporting controller (e.g. `kubedb-provisioner`) and, when
/// known, the reporting instance (the pod name).
#[derive(Clone)]
pub struct EventPublisher {
    client: kube::Client,
    controller: String,
    instance: String,
    hasher: std::collections::hash_map::RandomState,
    recent: std::sync::Arc<Mutex<Recent>>,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher").finish_non_exhaustive()
    }
}

/// One Event to publish about an object.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    /// Normal or Warning.
    pub type_: EventType,
    /// Short PascalCase reason (at most 128 characters).
    pub reason: String,
    /// Short PascalCase action the controller took or tried.
    pub action: String,
    /// Human-readable message (at most 1 kB; longer notes are cut).
    pub note: String,
    /// A second object the event is about (events.k8s.io `related`), e.g. the pod a step of an ops
    /// request acted on. It is part of the key under which repeated events are counted as one
    /// series, so steps on different pods stay separate events with their own messages.
    pub related: Option<ObjectReference>,
}

impl EventSpec {
    /// A Normal event.
    pub fn normal(reason: &str, action: &str, note: impl Into<String>) -> Self {
        Self {
            type_: EventType::Normal,
            reason: reason.to_owned(),
            action: action.to_owned(),
            note: note.into(),
            related: None,
        }
    }

    /// The same event, also about `related`.
    pub fn related(mut self, related: ObjectReference) -> Self {
        self.related = Some(related);
        self
    }

    /// A Warning event.
    pub fn warning(reason: &str, action: &str, note: impl Into<String>) -> Self {
        Self {
            type_: EventType::Warning,
            ..Self::normal(reason, action, note)
        }
    }
}

/// Maximum size of an Event note accepted by the API server.
const MAX_NOTE_BYTES: usize = 1024;

/// Cuts `note` to at most [`MAX_NOTE_BYTES`] bytes on a character boundary.
pub fn truncate_note(note: &str) -> &str {
    if note.len() <= MAX_NOTE_BYTES {
        return note;
    }
    let mut end = MAX_NOTE_BYTES;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    &note[..end]
}

impl EventPublisher {
    /// A publisher reporting as `controller` (and `instance`, usually the pod name; the
    /// controller's name when unknown).
    pub fn new(client: kube::Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            client,
            controller: controller.to_owned(),
            instance: instance.unwrap_or_else(|| controller.to_owned()),
            hasher: std::collections::hash_map::RandomState::new(),
            recent: std::sync::Arc::default(),
        }
    }

    /// Publishes `event` about `object`. Failures are logged, not returned.
    pub async fn publish<K>(&self, object: &K, event: EventSpec)
    where
        K: Resource<DynamicType = ()>,
    {
        self.publish_ref(&object.object_ref(&()), event).await;
    }

    /// Publishes `event` about the object `reference`. Failures are logged, not returned.
    pub async fn publish_ref(&self, reference: &ObjectReference, event: EventSpec) {
        if let Err(error) = self.try_publish(reference, &event).await {
            tracing::warn!(%error, reason = %event.reason,
                object = reference.name.as_deref().unwrap_or_default(),
                "cannot publish event");
        }
    }

    async fn try_publish(
        &self,
        reference: &ObjectReference,
        event: &EventSpec,
    ) -> Result<(), kube::Error> {
        let key = self.recent_key(reference, event);
        let namespace = reference.namespace.as_deref().unwrap_or("default");
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let now = Timestamp::now();
        let continued = lock(&self.recent).series(key, Instant::now());
        if let Some((name, count)) = continued {
            let patch = serde_json::json!({"series": EventSeries {
                count,
                last_observed_time: MicroTime(now),
            }});
            match events
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    lock(&self.recent).remember(key, name, count, Instant::now());
                    return Ok(());
                }
                // Expired on the server (Events live an hour): start a new one.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error),
            }
        }
        let created = events
            .create(
                &PostParams::default(),
                &self.new_event(reference, event, now),
            )
            .await?;
        if let Some(name) = created.metadata.name {
            lock(&self.recent).remember(key, name, 1, Instant::now());
        }
        Ok(())
    }

    fn new_event(&self, reference: &ObjectReference, event: &EventSpec, now: Timestamp) -> Event {
        let base = reference.name.as_deref().unwrap_or(&self.controller);
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{base}.{:x}", now.as_nanosecond())),
                namespace: reference.namespace.clone(),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(event.type_.as_str().to_owned()),
            reason: Some(event.reason.clone()),
            action: Some(event.action.clone()),
            note: Some(truncate_note(&event.note).to_owned()),
            regarding: Some(reference.clone()),
            related: event.related.clone(),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }

    /// A hash of what makes two Events the same Event (the note is not part of it).
    fn recent_key(&self, reference: &ObjectReference, event: &EventSpec) -> u64 {
        let object = |r: &ObjectReference| {
            (
                r.api_version.clone(),
                r.kind.clone(),
                r.namespace.clone(),
                r.name.clone(),
                r.uid.clone(),
            )
        };
        self.hasher.hash_one((
            event.type_,
            &event.reason,
            &event.action,
            object(reference),
            event.related.as_ref().map(object),
        ))
    }
}

fn lock(recent: &Mutex<Recent>) -> std::sync::MutexGuard<'_, Recent> {
    recent.lock().unwrap_or_else(|p| p.into_inner())
}

/// The Events published recently, by [`EventPublisher::recent_key`]: their name and count.
#[derive(Debug, Default)]
struct Recent {
    events: HashMap<u64, Published>,
}

#[derive(Debug)]
struct Published {
    name: String,
    count: i32,
    at: Instant,
}

impl Recent {
    /// The name of the Event an Event with `key` continues at `now`, and the series count it
    /// brings it to; `None` when it is a new Event.
    fn series(&mut self, key: u64, now: Instant) -> Option<(String, i32)> {
        let published = self.events.get(&key)?;
        if now.saturating_duration_since(published.at) >= SERIES_TTL {
            self.events.remove(&key);
            return None;
        }
        Some((published.name.clone(), published.count.saturating_add(1)))
    }

    /// Records that the Event `name` (with `key`) reached `count` at `now`. When full, forgets
    /// expired Events, then the least recently published ones.
    fn remember(&mut self, key: u64, name: String, count: i32, now: Instant) {
        if self.events.len() >= SERIES_CAPACITY && !self.events.contains_key(&key) {
            self.events
                .retain(|_, p| now.saturating_duration_since(p.at) < SERIES_TTL);
            while self.events.len() >= SERIES_CAPACITY {
                let Some(oldest) = self
                    .events
                    .iter()
                    .min_by_key(|(_, p)| p.at)
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                self.events.remove(&oldest);
            }
        }
        self.events.insert(
            key,
            Published {
                name,
                count,
                at: now,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_cut_on_char_boundaries() {
        assert_eq!(truncate_note("short"), "short");
        let long = "é".repeat(600); // 1200 bytes
        let cut = truncate_note(&long);
        assert!(cut.len() <= MAX_NOTE_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(cut.len(), 1024);
    }

    #[test]
    fn repeats_continue_a_series_until_it_expires() {
        let mut recent = Recent::default();
        let t0 = Instant::now();
        assert_eq!(recent.series(1, t0), None, "a new Event");
        recent.remember(1, "db.17".into(), 1, t0);
        assert_eq!(recent.series(1, t0), Some(("db.17".into(), 2)));
        recent.remember(1, "db.17".into(), 2, t0 + Duration::from_secs(300));
        // The window runs from the last repeat.
        let later = t0 + Duration::from_secs(300) + SERIES_TTL - Duration::from_secs(1);
        assert_eq!(recent.series(1, later), Some(("db.17".into(), 3)));
        assert_eq!(recent.series(1, later + Duration::from_secs(1)), None);
        assert!(recent.events.is_empty(), "an expired Event is forgotten");
        assert_eq!(recent.series(2, t0), None, "another key");
    }

    #[test]
    fn the_memory_of_recent_events_is_bounded() {
        let mut recent = Recent::default();
        let t0 = Instant::now();
        // One expired entry, then the rest in publication order.
        recent.remember(0, "expired".into(), 1, t0);
        let start = t0 + SERIES_TTL;
        for key in 1..SERIES_CAPACITY as u64 {
            recent.remember(
                key,
                format!("e{key}"),
                1,
                start + Duration::from_millis(key),
            );
        }
        assert_eq!(recent.events.len(), SERIES_CAPACITY);
        let now = start + Duration::from_secs(10);
        // Full: the expired entry goes first.
        recent.remember(100_000, "new".into(), 1, now);
        assert_eq!(recent.events.len(), SERIES_CAPACITY);
        assert!(!recent.events.contains_key(&0));
        // Still full and nothing expired: the least recently published goes.
        recent.remember(100_001, "newer".into(), 1, now);
        assert_eq!(recent.events.len(), SERIES_CAPACITY);
        assert!(!recent.events.contains_key(&1));
        assert!(recent.events.contains_key(&2));
        // Updating a remembered Event does not evict anything.
        recent.remember(2, "e2".into(), 2, now);
        assert_eq!(recent.events.len(), SERIES_CAPACITY);
        assert_eq!(recent.series(2, now), Some(("e2".into(), 3)));
    }

    #[test]
    fn warning_keeps_fields() {
        let ev = EventSpec::warning("Failed", "Reconcile", "boom");
        assert_eq!(ev.type_, EventType::Warning);
        assert_eq!(
            (ev.reason.as_str(), ev.action.as_str(), ev.note.as_str()),
            ("Failed", "Reconcile", "boom")
        );
    }
}
