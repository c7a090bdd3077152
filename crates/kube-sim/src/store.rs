//! In-memory object storage: one ordered map per resource, a cluster-wide resourceVersion counter,
//! a bounded per-resource event history for watch resumption, and indexes by uid and owner.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::meta;
use crate::registry::GroupResource;

/// A stored object. Stored objects are never mutated in place; writes replace the `Arc`.
pub type Object = Arc<Value>;

/// Identifies an object within a resource: (namespace or "" for cluster-scoped, name).
pub type ObjKey = (String, String);

/// Identifies an object in the whole store.
pub type ObjRef = (GroupResource, ObjKey);

/// Watch event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change of one object.
#[derive(Debug)]
pub struct Change {
    /// resourceVersion of the change.
    pub rv: u64,
    /// Event type.
    pub kind: EventType,
    /// The object after the change (for deletions: its last state with the deletion's RV).
    pub object: Object,
    /// The object before the change (for selector transitions in watches).
    pub previous: Option<Object>,
    /// The serialized watch line, computed at most once and shared by every watcher.
    pub line: OnceLock<axum::body::Bytes>,
}

/// Objects and recent changes of one resource.
#[derive(Debug)]
pub struct Collection {
    /// Objects ordered by (namespace, name).
    pub objects: BTreeMap<ObjKey, Object>,
    /// Recent changes, oldest first.
    pub history: VecDeque<Arc<Change>>,
    /// The newest RV that is no longer in `history` (watches from before it get 410 Gone).
    pub compacted_rv: u64,
    /// Live changes for open watches.
    pub tx: broadcast::Sender<Arc<Change>>,
}

impl Collection {
    fn new(compacted_rv: u64) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Collection {
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            compacted_rv,
            tx,
        }
    }

    /// Objects of one namespace (or all, with `None`), in name order.
    pub fn iter_namespace<'a>(
        &'a self,
        ns: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = (&'a ObjKey, &'a Object)> + 'a> {
        match ns {
            None => Box::new(self.objects.iter()),
            Some(ns) => Box::new(
                self.objects
                    .range((ns.to_owned(), String::new())..)
                    .take_while(move |((n, _), _)| n == ns),
            ),
        }
    }
}

/// The store of every object. Resources served through several groups (Events) are stored
/// under one key, [`GroupResource::storage`].
#[derive(Debug)]
pub struct Store {
    rv: u64,
    history_limit: usize,
    collections: HashMap<GroupResource, Collection>,
    uids: HashMap<String, ObjRef>,
    dependents: HashMap<String, HashSet<ObjRef>>,
}

impl Store {
    /// An empty store keeping at most `history_limit` changes per resource.
    pub fn new(history_limit: usize) -> Self {
        Store {
            rv: 1,
            history_limit: history_limit.max(1),
            collections: HashMap::new(),
            uids: HashMap::new(),
            dependents: HashMap::new(),
        }
    }

    /// The newest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// The collection of a resource, created on first use.
    ///
    /// A new collection has lost no change of its resource (every write goes through here), so
    /// nothing is compacted: a watch from any earlier resourceVersion (for example the one a list
    /// of the still-empty resource returned) resumes instead of getting 410 Gone.
    pub fn collection(&mut self, gr: &GroupResource) -> &mut Collection {
        self.collections
            .entry(gr.storage().into_owned())
            .or_insert_with(|| Collection::new(0))
    }

    /// The collection of a resource, if it ever held anything.
    pub fn peek(&self, gr: &GroupResource) -> Option<&Collection> {
        self.collections.get(&gr.storage())
    }

    /// One object.
    pub fn get(&self, gr: &GroupResource, key: &ObjKey) -> Option<Object> {
        self.collections
            .get(&gr.storage())?
            .objects
            .get(key)
            .cloned()
    }

    /// The object with a uid.
    pub fn by_uid(&self, uid: &str) -> Option<(ObjRef, Object)> {
        let r = self.uids.get(uid)?;
        let obj = self.get(&r.0, &r.1)?;
        Some((r.clone(), obj))
    }

    /// Objects whose ownerReferences name `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<ObjRef> {
        let mut deps: Vec<ObjRef> = self
            .dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        deps.sort();
        deps
    }

    fn unindex(&mut self, r: &ObjRef, obj: &Value) {
        self.uids.remove(meta::uid(obj));
        for owner in meta::owner_uids(obj) {
            if let Some(set) = self.dependents.get_mut(&owner) {
                set.remove(r);
                if set.is_empty() {
                    self.dependents.remove(&owner);
                }
            }
        }
    }

    fn index(&mut self, r: &ObjRef, obj: &Value) {
        self.uids.insert(meta::uid(obj).to_owned(), r.clone());
        for owner in meta::owner_uids(obj) {
            self.dependents.entry(owner).or_default().insert(r.clone());
        }
    }

    fn record(&mut self, gr: &GroupResource, change: Change) {
        let limit = self.history_limit;
        let col = self.collection(gr);
        let change = Arc::new(change);
        col.history.push_back(change.clone());
        while col.history.len() > limit {
            if let Some(old) = col.history.pop_front() {
                col.compacted_rv = old.rv;
            }
        }
        // No receivers is fine.
        let _ = col.tx.send(change);
    }

    /// Stores a new or changed object, assigning the next resourceVersion. Returns the stored object.
    pub fn put(&mut self, gr: &GroupResource, mut obj: Value) -> Object {
        let gr = &*gr.storage();
        self.rv += 1;
        let rv = self.rv;
        meta::metadata_mut(&mut obj)
            .insert("resourceVersion".into(), Value::String(rv.to_string()));
        let key = (
            meta::namespace(&obj).to_owned(),
            meta::name(&obj).to_owned(),
        );
        let obj = Arc::new(obj);
        let r = (gr.clone(), key.clone());
        let previous = self.collection(gr).objects.insert(key, obj.clone());
        if let Some(prev) = &previous {
            self.unindex(&r, prev);
        }
        self.index(&r, &obj);
        let kind = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(
            gr,
            Change {
                rv,
                kind,
                object: obj.clone(),
                previous,
                line: OnceLock::new(),
            },
        );
        obj
    }

    /// Removes an object; the DELETED event carries its last state with a new resourceVersion.
    pub fn remove(&mut self, gr: &GroupResource, key: &ObjKey) -> Option<Object> {
        let gr = &*gr.storage();
        let prev = self.collections.get_mut(gr)?.objects.remove(key)?;
        let r = (gr.clone(), key.clone());
        self.unindex(&r, &prev);
        self.rv += 1;
        let rv = self.rv;
        let mut last = (*prev).clone();
        meta::metadata_mut(&mut last)
            .insert("resourceVersion".into(), Value::String(rv.to_string()));
        let last = Arc::new(last);
        self.record(
            gr,
            Change {
                rv,
                kind: EventType::Deleted,
                object: last.clone(),
                previous: Some(prev),
                line: OnceLock::new(),
            },
        );
        Some(last)
    }

    /// Drops every object of a resource (when its CRD goes), emitting DELETED events.
    pub fn remove_all(&mut self, gr: &GroupResource) -> Vec<Object> {
        let keys: Vec<ObjKey> = self
            .collections
            .get(&gr.storage())
            .map(|c| c.objects.keys().cloned().collect())
            .unwrap_or_default();
        keys.iter().filter_map(|k| self.remove(gr, k)).collect()
    }

    /// Forgets all kept history, so that watches from any earlier resourceVersion get 410 Gone.
    pub fn compact(&mut self) {
        let rv = self.rv;
        for col in self.collections.values_mut() {
            col.history.clear();
            col.compacted_rv = rv;
        }
    }

    /// Number of stored objects over all resources.
    pub fn len(&self) -> usize {
        self.collections.values().map(|c| c.objects.len()).sum()
    }

    /// Whether the store holds no objects.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(ns: &str, name: &str, uid: &str, owner: Option<&str>) -> Value {
        let mut o = json!({"metadata": {"namespace": ns, "name": name, "uid": uid}});
        if let Some(owner) = owner {
            o["metadata"]["ownerReferences"] =
                json!([{"uid": owner, "name": "o", "kind": "K", "apiVersion": "v1"}]);
        }
        o
    }

    #[test]
    fn versions_are_monotonic_and_history_is_bounded() {
        let gr = GroupResource::new("", "configmaps");
        let mut s = Store::new(2);
        let a = s.put(&gr, obj("ns", "a", "u1", None));
        let b = s.put(&gr, obj("ns", "b", "u2", None));
        assert!(meta::resource_version(&b) > meta::resource_version(&a));
        s.put(&gr, obj("ns", "a", "u1", None));
        let col = s.peek(&gr).unwrap();
        assert_eq!(col.history.len(), 2);
        assert_eq!(col.compacted_rv, meta::resource_version(&a));
        let gone = s.remove(&gr, &("ns".into(), "b".into())).unwrap();
        assert_eq!(meta::resource_version(&gone), s.current_rv());
        assert_eq!(
            s.peek(&gr).unwrap().history.back().unwrap().kind,
            EventType::Deleted
        );
    }

    #[test]
    fn a_resource_first_used_late_has_nothing_compacted() {
        let mut s = Store::new(10);
        s.put(
            &GroupResource::new("", "configmaps"),
            obj("ns", "a", "u1", None),
        );
        let listed_at = s.current_rv();
        s.put(
            &GroupResource::new("", "configmaps"),
            obj("ns", "b", "u2", None),
        );
        // A watch of a never-written kind from the RV an earlier (empty) list returned.
        let col = s.collection(&GroupResource::new("", "secrets"));
        assert!(
            col.compacted_rv <= listed_at,
            "{} > {listed_at}",
            col.compacted_rv
        );
    }

    #[test]
    fn both_event_views_share_one_collection() {
        let core = GroupResource::new("", "events");
        let v1 = GroupResource::new("events.k8s.io", "events");
        let mut s = Store::new(10);
        let rx = s.collection(&core).tx.subscribe();
        let put = s.put(&v1, obj("ns", "e", "u1", None));
        let key = ("ns".to_owned(), "e".to_owned());
        assert_eq!(s.get(&core, &key), Some(put.clone()));
        assert_eq!(s.peek(&core).unwrap().history.len(), 1);
        assert_eq!(rx.len(), 1);
        assert_eq!(s.by_uid("u1").unwrap().0.0, core);
        assert!(s.remove(&core, &key).is_some());
        assert!(s.get(&v1, &key).is_none());
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn namespace_ranges_and_indexes() {
        let gr = GroupResource::new("", "pods");
        let mut s = Store::new(10);
        s.put(&gr, obj("a", "x", "u1", None));
        s.put(&gr, obj("b", "x", "u2", Some("u1")));
        s.put(&gr, obj("b", "y", "u3", Some("u1")));
        s.put(&gr, obj("c", "x", "u4", None));
        let names: Vec<_> = s
            .collection(&gr)
            .iter_namespace(Some("b"))
            .map(|(k, _)| k.1.clone())
            .collect();
        assert_eq!(names, ["x", "y"]);
        assert_eq!(s.dependents_of("u1").len(), 2);
        assert_eq!(
            s.by_uid("u4").unwrap().0.1,
            ("c".to_owned(), "x".to_owned())
        );
        s.remove(&gr, &("b".into(), "x".into()));
        assert_eq!(s.dependents_of("u1").len(), 1);
        assert!(s.by_uid("u2").is_none());
    }
}
