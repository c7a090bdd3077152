//! The `scale` and `pods/eviction` subresources.

use serde_json::{Value, json};

use crate::cluster::{Cluster, DeleteOptions, WriteOptions};
use crate::error::{ApiError, ApiResult, Cause};
use crate::meta;
use crate::registry::{GroupResource, ResourceInfo};
use crate::selector::LabelSelector;
use crate::store::Object;

fn set_path(obj: &mut Value, dotted: &str, value: Value) {
    let mut cur = obj;
    let parts: Vec<&str> = dotted.trim_start_matches('.').split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        if i == parts.len() - 1 {
            cur[*part] = value;
            return;
        }
        cur = cur
            .as_object_mut()
            .expect("object")
            .entry(*part)
            .or_insert_with(|| json!({}));
    }
}

impl Cluster {
    /// Writes the desired replicas of a Scale into its object.
    pub fn set_scale(
        &mut self,
        info: &ResourceInfo,
        version: &str,
        ns: Option<&str>,
        name: &str,
        scale: &Value,
        opts: &WriteOptions,
    ) -> ApiResult<Object> {
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .ok_or_else(|| ApiError::bad_request("Scale.spec.replicas is required"))?;
        if replicas < 0 {
            return Err(ApiError::invalid(
                "autoscaling",
                "Scale",
                name,
                vec![Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {replicas}: must be greater than or equal to 0"
                    ),
                    field: "spec.replicas".into(),
                }],
            ));
        }
        let obj = self.get(info, ns, name)?;
        if let Some(rv) = meta::meta_str(scale, "resourceVersion")
            && !rv.is_empty()
            && rv != meta::meta_str(&obj, "resourceVersion").unwrap_or_default()
        {
            return Err(ApiError::stale(&info.group, &info.plural, name));
        }
        let path = info
            .version(version)
            .and_then(|v| v.scale.clone())
            .expect("scale")
            .spec_replicas_path;
        let mut next = (*present(info, version, &obj)).clone();
        set_path(&mut next, &path, json!(replicas));
        self.update(info, version, ns, name, None, next, opts)
    }

    /// `POST pods/<name>/eviction`: deletes the pod unless a PodDisruptionBudget forbids it.
    pub fn evict(
        &mut self,
        ns: &str,
        name: &str,
        eviction: &Value,
        dry_run: bool,
    ) -> ApiResult<()> {
        let pods = self
            .registry
            .get(&GroupResource::new("", "pods"))
            .expect("pods");
        let pod = self.get(&pods, Some(ns), name)?;
        if meta::is_deleting(&pod) {
            return Ok(());
        }
        let opts = eviction
            .get("deleteOptions")
            .cloned()
            .unwrap_or(Value::Null);
        let delete = DeleteOptions {
            grace_period: opts.get("gracePeriodSeconds").and_then(Value::as_i64),
            uid: opts
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_owned),
            resource_version: opts
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned),
            dry_run: dry_run
                || opts
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|v| v == "All")),
            propagation: None,
        };
        let stale = delete.uid.as_ref().is_some_and(|u| u != meta::uid(&pod))
            || delete
                .resource_version
                .as_ref()
                .is_some_and(|rv| Some(rv.as_str()) != meta::meta_str(&pod, "resourceVersion"));
        if stale {
            return Err(ApiError::conflict(
                "",
                "pods",
                name,
                "Precondition failed: the pod's uid or resourceVersion does not match",
            ));
        }
        let pdb_gr = GroupResource::new("policy", "poddisruptionbudgets");
        let pdbs: Vec<Object> = self
            .store
            .peek(&pdb_gr)
            .map(|c| {
                c.iter_namespace(Some(ns))
                    .map(|(_, o)| o.clone())
                    .filter(|pdb| {
                        pdb.pointer("/spec/selector")
                            .and_then(LabelSelector::from_object)
                            .is_some_and(|s| s.matches(&pod))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if pdbs.len() > 1 {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        if let Some(pdb) = pdbs.first() {
            let allowed = pdb
                .pointer("/status/disruptionsAllowed")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if allowed <= 0 {
                let mut err = ApiError::too_many_requests(
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                );
                err.details = Some(json!({"causes": [{
                    "reason": "DisruptionBudget",
                    "message": format!(
                        "The disruption budget {} needs {} healthy pods and has {} currently",
                        meta::name(pdb),
                        pdb.pointer("/status/desiredHealthy").and_then(Value::as_i64).unwrap_or(0),
                        pdb.pointer("/status/currentHealthy").and_then(Value::as_i64).unwrap_or(0),
                    ),
                }]}));
                return Err(err);
            }
            if delete.dry_run {
                return Ok(());
            }
            let mut next = (**pdb).clone();
            next["status"]["disruptionsAllowed"] = json!(allowed - 1);
            let disrupted = next["status"]
                .as_object_mut()
                .expect("status")
                .entry("disruptedPods")
                .or_insert_with(|| json!({}));
            disrupted[name] = json!(meta::now_rfc3339());
            let pdb_info = self.registry.get(&pdb_gr).expect("pdbs");
            let pdb_name = meta::name(pdb).to_owned();
            self.update(
                &pdb_info,
                "v1",
                Some(ns),
                &pdb_name,
                Some("status"),
                next,
                &WriteOptions::default(),
            )?;
        }
        self.delete(&pods, Some(ns), name, &delete)?;
        Ok(())
    }
}

use crate::cluster::present;
