//! Deletion semantics: preconditions, finalizers, graceful pod termination, garbage collection
//! of dependents (Background, Orphan, Foreground) and the namespace controller. All of it runs
//! synchronously inside the triggering request, under the cluster lock.

use serde_json::{Value, json};

use crate::cluster::{Cluster, DeleteOptions, ListOptions, crd_gr, namespaces_gr};
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::registry::{self, GroupResource, ResourceInfo};
use crate::store::{ObjKey, Object};

impl Cluster {
    /// The garbage collector deletes an object all of whose owners are gone (e.g. created with a
    /// reference to an owner deleted a moment before). Objects without owners are left alone.
    pub(crate) fn collect_if_orphaned(&mut self, gr: &GroupResource, obj: &Object) {
        let owners = meta::owner_uids(obj);
        if owners.is_empty() || owners.iter().any(|u| self.store.by_uid(u).is_some()) {
            return;
        }
        let key = (meta::namespace(obj).to_owned(), meta::name(obj).to_owned());
        self.delete_object(gr, &key, None, None);
    }

    /// Deletes an object. Returns the object (its final state, or its state with deletionTimestamp
    /// when finalizers or graceful pod termination keep it) and whether it is gone.
    pub fn delete(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<(Object, bool)> {
        let obj = self.get(info, ns, name)?;
        if let Some(uid) = &opts.uid
            && uid != meta::uid(&obj)
        {
            return Err(ApiError::conflict(
                &info.group,
                &info.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta::uid(&obj)
                ),
            ));
        }
        if let Some(rv) = &opts.resource_version
            && rv != meta::meta_str(&obj, "resourceVersion").unwrap_or_default()
        {
            return Err(ApiError::conflict(
                &info.group,
                &info.plural,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta::meta_str(&obj, "resourceVersion").unwrap_or_default()
                ),
            ));
        }
        if opts.dry_run {
            return Ok((obj, false));
        }
        let key = Self::key(info, ns, name);
        Ok(self.delete_object(
            &info.gr(),
            &key,
            opts.propagation.as_deref(),
            opts.grace_period,
        ))
    }

    fn delete_object(
        &mut self,
        gr: &GroupResource,
        key: &ObjKey,
        propagation: Option<&str>,
        grace: Option<i64>,
    ) -> (Object, bool) {
        let Some(obj) = self.store.get(gr, key) else {
            unreachable_object()
        };
        let mut next = (*obj).clone();
        let mut finalizers = meta::finalizers(&next);
        let deleting = meta::is_deleting(&next);
        match propagation {
            Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                finalizers.push("foregroundDeletion".into())
            }
            Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                finalizers.push("orphan".into())
            }
            _ => {}
        }
        let is_pod = *gr == GroupResource::new("", "pods");
        let on_node = is_pod
            && next
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
        let grace = if is_pod {
            grace
                .or_else(|| {
                    next.pointer("/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_i64)
                })
                .unwrap_or(30)
        } else {
            0
        };
        let graceful = on_node && grace > 0;
        if *gr == namespaces_gr() {
            if !deleting {
                let m = meta::metadata_mut(&mut next);
                m.insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
                next["status"] = json!({"phase": "Terminating"});
                meta::set_finalizers(&mut next, &finalizers);
                self.store.put(gr, next);
            }
            self.sweep_namespace(&key.1);
            let current = self.store.get(gr, key);
            return match current {
                Some(o) => (o, false),
                None => (obj, true),
            };
        }
        if finalizers.is_empty() && !graceful {
            return match self.remove_now(gr, key) {
                Some(gone) => (gone, true),
                None => (obj, true),
            };
        }
        if deleting {
            let current_grace = meta::metadata(&next)
                .get("deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let shorter = is_pod && grace < current_grace;
            let new_finalizers = finalizers != meta::finalizers(&next);
            if !shorter && !new_finalizers {
                return (obj, false);
            }
            if shorter && grace == 0 && finalizers.is_empty() {
                return match self.remove_now(gr, key) {
                    Some(gone) => (gone, true),
                    None => (obj, true),
                };
            }
        }
        let m = meta::metadata_mut(&mut next);
        let now = jiff::Timestamp::now();
        let when = jiff::Timestamp::from_second(now.as_second() + if graceful { grace } else { 0 })
            .unwrap_or(now);
        m.insert("deletionTimestamp".into(), json!(when.to_string()));
        m.insert(
            "deletionGracePeriodSeconds".into(),
            json!(if graceful { grace } else { 0 }),
        );
        meta::set_finalizers(&mut next, &finalizers);
        let stored = self.store.put(gr, next);
        self.process_own_finalizers(gr, &stored);
        match self.store.get(gr, key) {
            Some(o) => (o, false),
            None => (stored, true),
        }
    }

    /// The garbage collector's part of finalization: `orphan` and `foregroundDeletion`.
    pub(crate) fn process_own_finalizers(&mut self, gr: &GroupResource, obj: &Object) {
        let finalizers = meta::finalizers(obj);
        let uid = meta::uid(obj).to_owned();
        let key = (meta::namespace(obj).to_owned(), meta::name(obj).to_owned());
        if finalizers.iter().any(|f| f == "orphan") {
            for (dgr, dkey) in self.store.dependents_of(&uid) {
                if let Some(dep) = self.store.get(&dgr, &dkey) {
                    let mut d = (*dep).clone();
                    let refs: Vec<Value> = meta::owner_refs(&d)
                        .into_iter()
                        .filter(|r| r.get("uid").and_then(Value::as_str) != Some(&uid))
                        .collect();
                    let m = meta::metadata_mut(&mut d);
                    if refs.is_empty() {
                        m.remove("ownerReferences")
                    } else {
                        m.insert("ownerReferences".into(), Value::Array(refs))
                    };
                    self.store.put(&dgr, d);
                }
            }
            self.drop_finalizer(gr, &key, "orphan");
        } else if finalizers.iter().any(|f| f == "foregroundDeletion") {
            for (dgr, dkey) in self.store.dependents_of(&uid) {
                if self
                    .store
                    .get(&dgr, &dkey)
                    .is_some_and(|d| !meta::is_deleting(&d))
                {
                    self.delete_object(&dgr, &dkey, Some("Foreground"), None);
                }
            }
            self.check_foreground(gr, &key);
        }
    }

    fn check_foreground(&mut self, gr: &GroupResource, key: &ObjKey) {
        let Some(obj) = self.store.get(gr, key) else {
            return;
        };
        if !meta::finalizers(&obj)
            .iter()
            .any(|f| f == "foregroundDeletion")
        {
            return;
        }
        let uid = meta::uid(&obj).to_owned();
        let blocking = self
            .store
            .dependents_of(&uid)
            .into_iter()
            .any(|(dgr, dkey)| {
                self.store.get(&dgr, &dkey).is_some_and(|d| {
                    meta::owner_refs(&d).iter().any(|r| {
                        r.get("uid").and_then(Value::as_str) == Some(&uid)
                            && r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true)
                    })
                })
            });
        if !blocking {
            self.drop_finalizer(gr, key, "foregroundDeletion");
        }
    }

    fn drop_finalizer(&mut self, gr: &GroupResource, key: &ObjKey, finalizer: &str) {
        let Some(obj) = self.store.get(gr, key) else {
            return;
        };
        let mut next = (*obj).clone();
        let rest: Vec<String> = meta::finalizers(&next)
            .into_iter()
            .filter(|f| f != finalizer)
            .collect();
        meta::set_finalizers(&mut next, &rest);
        if rest.is_empty() && meta::is_deleting(&next) {
            self.store.put(gr, next);
            self.remove_now(gr, key);
        } else {
            self.store.put(gr, next);
        }
    }

    /// Removes an object for good and runs what follows: garbage collection of dependents,
    /// foreground owners, namespace finalization, CRD teardown.
    pub(crate) fn remove_now(&mut self, gr: &GroupResource, key: &ObjKey) -> Option<Object> {
        let gone = self.store.remove(gr, key)?;
        let uid = meta::uid(&gone).to_owned();
        if *gr == GroupResource::new("", "pods") {
            self.removed_pods.push(key.clone());
        }
        if *gr == crd_gr()
            && let Ok(res) = registry::crd_resource(&gone)
        {
            let rgr = res.gr();
            self.registry.remove(&rgr);
            self.store.remove_all(&rgr);
        }
        // Dependents: background deletion unless other owners still exist.
        for (dgr, dkey) in self.store.dependents_of(&uid) {
            let Some(dep) = self.store.get(&dgr, &dkey) else {
                continue;
            };
            let live_owners = meta::owner_uids(&dep)
                .iter()
                .filter(|u| **u != uid && self.store.by_uid(u).is_some())
                .count();
            if live_owners > 0 {
                let mut d = (*dep).clone();
                let refs: Vec<Value> = meta::owner_refs(&d)
                    .into_iter()
                    .filter(|r| r.get("uid").and_then(Value::as_str) != Some(&uid))
                    .collect();
                meta::metadata_mut(&mut d).insert("ownerReferences".into(), Value::Array(refs));
                self.store.put(&dgr, d);
            } else if !meta::is_deleting(&dep) {
                self.delete_object(&dgr, &dkey, None, None);
            }
        }
        // Owners waiting in foreground deletion for this dependent.
        for owner in meta::owner_uids(&gone) {
            if let Some(((ogr, okey), _)) = self.store.by_uid(&owner) {
                self.check_foreground(&ogr, &okey);
            }
        }
        if !key.0.is_empty()
            && let Some(ns) = self
                .store
                .get(&namespaces_gr(), &(String::new(), key.0.clone()))
            && meta::is_deleting(&ns)
        {
            self.finish_namespace_if_empty(&key.0);
        }
        Some(gone)
    }

    /// Namespace controller: deletes everything in a terminating namespace.
    fn sweep_namespace(&mut self, ns: &str) {
        let namespaced: Vec<GroupResource> = self
            .registry
            .all()
            .filter(|r| r.namespaced)
            .map(|r| r.gr())
            .collect();
        for gr in namespaced {
            let keys: Vec<ObjKey> = match self.store.peek(&gr) {
                Some(col) => col
                    .iter_namespace(Some(ns))
                    .map(|(k, _)| k.clone())
                    .collect(),
                None => continue,
            };
            for key in keys {
                if self
                    .store
                    .get(&gr, &key)
                    .is_some_and(|o| !meta::is_deleting(&o))
                {
                    self.delete_object(&gr, &key, None, None);
                }
            }
        }
        self.finish_namespace_if_empty(ns);
    }

    fn finish_namespace_if_empty(&mut self, ns: &str) {
        let empty = self.registry.all().filter(|r| r.namespaced).all(|r| {
            self.store
                .peek(&r.gr())
                .is_none_or(|c| c.iter_namespace(Some(ns)).next().is_none())
        });
        if !empty {
            return;
        }
        let key = (String::new(), ns.to_owned());
        if let Some(obj) = self.store.get(&namespaces_gr(), &key)
            && meta::finalizers(&obj).is_empty()
        {
            self.remove_now(&namespaces_gr(), &key);
        }
    }

    /// Deletes every matching object of a resource in a namespace.
    pub fn delete_collection(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> ApiResult<Vec<Object>> {
        let page = self.list(
            info,
            ns,
            &ListOptions {
                limit: 0,
                continue_token: None,
                ..list.clone()
            },
        )?;
        let mut out = Vec::new();
        for obj in page.items {
            let name = meta::name(&obj).to_owned();
            let ns = meta::namespace(&obj).to_owned();
            if opts.dry_run {
                out.push(obj);
                continue;
            }
            let (o, _) = self.delete(
                info,
                Some(&ns),
                &name,
                &DeleteOptions {
                    uid: None,
                    resource_version: None,
                    ..opts.clone()
                },
            )?;
            out.push(o);
        }
        Ok(out)
    }
}

fn unreachable_object() -> ! {
    panic!("delete_object called for a missing object")
}
