//! Glue between the API server and the patch algorithms of [`crate::patch`]: picks list semantics
//! for a kind, maps errors to `metav1.Status` errors, and decides which fields a write manages.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::patch::{
    self, ApplyError, BuiltinListTypes, ListTypes, PatchError, SchemaListTypes, Tracked,
};
use crate::registry::ResourceInfo;

/// List semantics of a kind in a version: the built-in table, or the CRD version's schema.
pub fn list_types(info: &ResourceInfo, version: &str) -> Box<dyn ListTypes> {
    match info.version(version).and_then(|v| v.schema.clone()) {
        Some(schema) if info.custom => Box::new(SchemaListTypes::new(schema)),
        _ => Box::new(BuiltinListTypes::for_kind(
            &info.api_version(version),
            &info.kind,
        )),
    }
}

fn tracked(info: &ResourceInfo, version: &str, subresource: Option<&str>) -> Tracked {
    match (info.has_status(version), subresource) {
        (true, Some("status")) => Tracked::OnlyStatus,
        (true, _) => Tracked::ExceptStatus,
        (false, _) => Tracked::All,
    }
}

fn patch_error(e: PatchError) -> ApiError {
    match e {
        PatchError::BadRequest(m) => ApiError::bad_request(m),
        PatchError::Unprocessable(m) => ApiError::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {m}"),
        ),
        e @ PatchError::StrategicUnsupported => {
            ApiError::new(415, "UnsupportedMediaType", e.to_string())
        }
    }
}

/// Strategic merge patch (415 for custom resources, as on a real server).
pub fn strategic(
    info: &ResourceInfo,
    version: &str,
    current: &Value,
    patch_doc: &Value,
) -> ApiResult<Value> {
    patch::strategic_merge_patch(current, patch_doc, list_types(info, version).as_ref())
        .map_err(patch_error)
}

/// JSON merge patch.
pub fn merge(current: &Value, patch_doc: &Value) -> ApiResult<Value> {
    if !patch_doc.is_object() {
        return Err(ApiError::bad_request("a merge patch must be a JSON object"));
    }
    Ok(patch::merge_patch(current, patch_doc))
}

/// JSON patch (RFC 6902, with `test`).
pub fn json(current: &Value, patch_doc: &Value) -> ApiResult<Value> {
    patch::json_patch(current, patch_doc).map_err(patch_error)
}

/// Server-side apply of `applied` by `manager` onto `live` (`None` = create).
pub fn apply(
    info: &ResourceInfo,
    version: &str,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
) -> ApiResult<Value> {
    let now = meta::now_rfc3339();
    let api_version = info.api_version(version);
    let opts = patch::WriteOptions {
        manager,
        api_version: &api_version,
        subresource,
        tracked: tracked(info, version, subresource),
        force,
        now: &now,
    };
    match patch::apply(live, applied, &opts, list_types(info, version).as_ref()) {
        Ok(applied) => Ok(applied.object),
        Err(ApplyError::BadRequest(m)) => Err(ApiError::bad_request(m)),
        Err(e @ ApplyError::Conflict(_)) => {
            let ApplyError::Conflict(conflicts) = &e else {
                unreachable!()
            };
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": c.to_string(), "field": c.field}))
                .collect();
            let mut err = ApiError::new(409, "Conflict", e.to_string());
            err.details = Some(
                json!({"name": meta::name(applied), "group": info.group, "kind": info.plural, "causes": causes}),
            );
            Err(err)
        }
    }
}

/// Records a non-apply write by `manager` in `metadata.managedFields`.
pub fn record_update(
    info: &ResourceInfo,
    version: &str,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
) {
    let now = meta::now_rfc3339();
    let api_version = info.api_version(version);
    let opts = patch::WriteOptions {
        manager,
        api_version: &api_version,
        subresource,
        tracked: tracked(info, version, subresource),
        force: false,
        now: &now,
    };
    *new = patch::record_update(old, new, &opts, list_types(info, version).as_ref());
}
