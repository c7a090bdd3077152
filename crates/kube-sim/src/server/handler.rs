//! The HTTP front: parses requests, applies faults and accounting, and calls the cluster.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::route::{self, ResourcePath, Route};
use super::{ServerState, admin, discovery, logs, openapi, table, watch};
use crate::accounting::RequestInfo;
use crate::cluster::{DeleteOptions, ListOptions, WriteOptions, present};
use crate::error::{ApiError, ApiResult};
use crate::events;
use crate::meta;
use crate::patching::PatchType;
use crate::registry::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Object;

pub(super) type Query = HashMap<String, String>;

const MAX_BODY: usize = 64 * 1024 * 1024;

pub(super) fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(super) fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

fn parse_query(q: Option<&str>) -> Query {
    let Some(q) = q else { return Query::new() };
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{q}").parse().expect("uri"),
    )
    .map(|axum::extract::Query(v)| v.into_iter().collect())
    .unwrap_or_default()
}

pub(super) fn flag(q: &Query, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "true" || v == "1")
}

/// Entry point for every request.
pub async fn handle(State(state): State<Arc<ServerState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let query = parse_query(parts.uri.query());
    match route::parse(parts.uri.path()) {
        Route::Version => ok(&discovery::version()),
        Route::Health => (StatusCode::OK, "ok").into_response(),
        Route::CoreVersions => ok(&discovery::core_versions(&state.address())),
        Route::Groups => ok(&discovery::group_list(&state.lock().registry)),
        Route::Group(g) => match discovery::group(&state.lock().registry, &g) {
            Some(doc) => ok(&doc),
            None => ApiError::no_route().into_response(),
        },
        Route::GroupVersion(g, v) => match discovery::resource_list(&state.lock().registry, &g, &v)
        {
            Some(doc) => ok(&doc),
            None => ApiError::no_route().into_response(),
        },
        Route::OpenApiV3(path) => openapi_v3(&state, &path),
        Route::OpenApiV2 | Route::Unknown => ApiError::no_route().into_response(),
        Route::Sim(segs) => admin::sim_admin(&state, &parts.method, &segs, body)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Route::Resource(rp) => resource(&state, &parts.method, &parts.headers, rp, &query, body)
            .await
            .unwrap_or_else(IntoResponse::into_response),
    }
}

fn openapi_v3(state: &ServerState, path: &[String]) -> Response {
    let cluster = state.lock();
    let registry = &cluster.registry;
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    let doc = match path.as_slice() {
        [] => {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            for r in registry.all() {
                (
                    &r.group,
                    &r.plural,
                    r.versions.iter().map(|v| &v.name).collect::<Vec<_>>(),
                )
                    .hash(&mut h);
            }
            Some(openapi::index(registry, h.finish()))
        }
        ["api", v] => openapi::group_version(registry, "", v),
        ["apis", g, v] => openapi::group_version(registry, g, v),
        _ => None,
    };
    match doc {
        Some(doc) => ok(&doc),
        None => ApiError::no_route().into_response(),
    }
}

pub(super) async fn read_body(body: Body) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))
}

fn decode(bytes: &[u8], content_type: &str) -> ApiResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    if content_type.contains("protobuf") {
        return super::protobuf::decode(bytes);
    }
    if content_type.contains("cbor") {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    if content_type.contains("yaml") {
        return yaml_serde::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))
}

fn verb_of(method: &Method, rp: &ResourcePath, query: &Query) -> &'static str {
    match (method.as_str(), rp.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if flag(query, "watch") => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

/// The field manager of a write: `fieldManager`, else the user agent up to its first `/`, as the
/// API server does.
fn write_options(q: &Query, user_agent: &str) -> WriteOptions {
    let from_agent = user_agent
        .split('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_owned();
    WriteOptions {
        dry_run: q.get("dryRun").is_some_and(|v| v == "All"),
        field_manager: Some(q.get("fieldManager").cloned().unwrap_or(from_agent)),
        force: flag(q, "force"),
        strict: q.get("fieldValidation").is_some_and(|v| v == "Strict"),
    }
}

/// List options of a request; field selectors on Events are rewritten to the stored core form.
fn list_options(info: &ResourceInfo, q: &Query) -> ApiResult<ListOptions> {
    let fields = FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    let gr = info.gr();
    let fields = if events::is_event_resource(&gr) {
        events::core_field_selector(&gr, fields)
    } else {
        fields
    };
    Ok(ListOptions {
        labels: LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?,
        fields,
        limit: q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0),
        continue_token: q.get("continue").filter(|c| !c.is_empty()).cloned(),
    })
}

fn delete_options(q: &Query, body: &Value) -> DeleteOptions {
    let body_str = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let orphan = body
        .get("orphanDependents")
        .and_then(Value::as_bool)
        .or_else(|| q.get("orphanDependents").map(|v| v == "true"));
    DeleteOptions {
        propagation: body_str("propagationPolicy")
            .or_else(|| q.get("propagationPolicy").cloned())
            .or_else(|| {
                orphan.map(|o| {
                    if o {
                        "Orphan".into()
                    } else {
                        "Background".into()
                    }
                })
            }),
        grace_period: body
            .get("gracePeriodSeconds")
            .and_then(Value::as_i64)
            .or_else(|| q.get("gracePeriodSeconds").and_then(|g| g.parse().ok())),
        uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned),
        dry_run: q.get("dryRun").is_some_and(|v| v == "All")
            || body
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All")),
    }
}

/// Accept header asks for a Table.
fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .is_some_and(|first| first.contains("as=Table"))
        })
}

fn list_body(
    info: &ResourceInfo,
    version: &str,
    meta_only: bool,
    items: &[Object],
    rv: u64,
    cont: Option<&str>,
    remaining: Option<usize>,
) -> Response {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    if let Some(r) = remaining {
        meta["remainingItemCount"] = json!(r);
    }
    let mut buf = Vec::with_capacity(64 + items.len() * 512);
    buf.extend_from_slice(
        format!(
            "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{meta},\"items\":[",
            if meta_only {
                "PartialObjectMetadataList"
            } else {
                &info.list_kind
            },
            if meta_only {
                "meta.k8s.io/v1".to_owned()
            } else {
                info.api_version(version)
            }
        )
        .as_bytes(),
    );
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        if meta_only {
            serde_json::to_writer(&mut buf, &table::partial_metadata(item))
        } else {
            serde_json::to_writer(&mut buf, &*present(info, version, item))
        }
        .expect("serializable");
    }
    buf.extend_from_slice(b"]}");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        buf,
    )
        .into_response()
}

fn object_response(
    info: &ResourceInfo,
    version: &str,
    meta_only: bool,
    code: StatusCode,
    obj: &Object,
) -> Response {
    if meta_only {
        return json_response(code, &table::partial_metadata(obj));
    }
    json_response(code, &present(info, version, obj))
}

/// Accept header asks for `PartialObjectMetadata` (kube's `*_metadata` calls, metadata watchers).
fn wants_metadata(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .is_some_and(|first| first.contains("as=PartialObjectMetadata"))
        })
}

async fn resource(
    state: &Arc<ServerState>,
    method: &Method,
    headers: &HeaderMap,
    rp: ResourcePath,
    q: &Query,
    body: Body,
) -> ApiResult<Response> {
    let info = state
        .lock()
        .registry
        .lookup(&rp.group, &rp.version, &rp.resource)
        .ok_or_else(ApiError::no_route)?;
    if !info.namespaced && rp.namespace.is_some() {
        return Err(ApiError::no_route());
    }
    let sub = rp.subresource.as_deref();
    if let Some(s) = sub {
        let v = info.version(&rp.version).expect("served");
        let known = (s == "status" && v.status)
            || (s == "scale" && v.scale.is_some())
            || info.extra_subresources.contains(&s);
        if !known || rp.name.is_none() {
            return Err(ApiError::no_route());
        }
    }
    let verb = verb_of(method, &rp, q);
    let request = RequestInfo {
        verb: verb.to_owned(),
        group: rp.group.clone(),
        resource: rp.resource.clone(),
        subresource: sub.unwrap_or_default().to_owned(),
        namespace: rp.namespace.clone().unwrap_or_default(),
        name: rp.name.clone().unwrap_or_default(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    };
    state.accounting.record(&request);
    let outcome = state.faults.check(&request);
    if outcome.latency > Duration::ZERO {
        tokio::time::sleep(outcome.latency).await;
    }
    if let Some(err) = outcome.error {
        return Err(err);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let meta_only = wants_metadata(headers);
    let ns = rp.namespace.as_deref();
    let version = rp.version.as_str();
    let name = rp.name.as_deref();
    match (verb, name, sub) {
        ("get", Some(name), Some("scale")) => {
            let obj = state.lock().get(&info, ns, name)?;
            Ok(ok(&scale_of(&info, version, &obj)))
        }
        ("get", Some(name), Some("log")) => {
            logs::pod_log(state, ns.unwrap_or_default(), name, q).await
        }
        ("get", Some(name), _) => {
            let obj = state.lock().get(&info, ns, name)?;
            if wants_table(headers) {
                return Ok(ok(&table::table(
                    &info,
                    version,
                    &[obj],
                    q.get("includeObject").map_or("Metadata", String::as_str),
                    None,
                )));
            }
            Ok(object_response(
                &info,
                version,
                meta_only,
                StatusCode::OK,
                &obj,
            ))
        }
        ("list", None, None) => {
            let opts = list_options(&info, q)?;
            let page = state.lock().list(&info, ns, &opts)?;
            if wants_table(headers) {
                let mut t = table::table(
                    &info,
                    version,
                    &page.items,
                    q.get("includeObject").map_or("Metadata", String::as_str),
                    Some(page.resource_version),
                );
                if let Some(c) = &page.continue_token {
                    t["metadata"]["continue"] = json!(c);
                }
                return Ok(ok(&t));
            }
            Ok(list_body(
                &info,
                version,
                meta_only,
                &page.items,
                page.resource_version,
                page.continue_token.as_deref(),
                page.remaining,
            ))
        }
        ("watch", None, None) => {
            let opts = list_options(&info, q)?;
            let params = watch::WatchParams {
                namespace: ns.map(str::to_owned),
                resource_version: q.get("resourceVersion").cloned().unwrap_or_default(),
                bookmarks: flag(q, "allowWatchBookmarks"),
                send_initial_events: flag(q, "sendInitialEvents"),
                timeout: q
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse().ok())
                    .map(Duration::from_secs),
                labels: opts.labels,
                fields: opts.fields,
                metadata_only: meta_only,
                table: wants_table(headers).then(|| {
                    q.get("includeObject")
                        .cloned()
                        .unwrap_or_else(|| "Metadata".into())
                }),
            };
            watch::start(state, info.clone(), version, params)
        }
        ("create", None, None) => {
            let body = decode(&read_body(body).await?, &content_type)?;
            let obj = state.lock().create(
                &info,
                version,
                ns,
                body,
                &write_options(q, &request.user_agent),
            )?;
            Ok(object_response(
                &info,
                version,
                meta_only,
                StatusCode::CREATED,
                &obj,
            ))
        }
        ("create", Some(name), Some("eviction")) => {
            let body = decode(&read_body(body).await?, &content_type)?;
            state.lock().evict(
                ns.unwrap_or_default(),
                name,
                &body,
                q.get("dryRun").is_some_and(|v| v == "All"),
            )?;
            state.forget_removed_pods();
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            ))
        }
        ("update", Some(name), Some("scale")) => {
            let body = decode(&read_body(body).await?, &content_type)?;
            let obj = state.lock().set_scale(
                &info,
                version,
                ns,
                name,
                &body,
                &write_options(q, &request.user_agent),
            )?;
            Ok(ok(&scale_of(&info, version, &obj)))
        }
        ("update", Some(name), sub @ (None | Some("status"))) => {
            let body = decode(&read_body(body).await?, &content_type)?;
            let obj = state.lock().update(
                &info,
                version,
                ns,
                name,
                sub,
                body,
                &write_options(q, &request.user_agent),
            )?;
            state.forget_removed_pods();
            Ok(object_response(
                &info,
                version,
                meta_only,
                StatusCode::OK,
                &obj,
            ))
        }
        ("patch", Some(name), sub) => {
            let patch_type = PatchType::from_content_type(&content_type)
                .ok_or_else(|| ApiError::unsupported_media_type(&content_type))?;
            if patch_type == PatchType::Apply && q.get("fieldManager").is_none_or(String::is_empty)
            {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            let body = decode(&read_body(body).await?, &content_type)?;
            let opts = write_options(q, &request.user_agent);
            if sub == Some("scale") {
                let obj = state.lock().get(&info, ns, name)?;
                let current = scale_of(&info, version, &obj);
                let patched = match patch_type {
                    PatchType::Json => crate::patch_adapter::json(&current, &body)?,
                    _ => crate::patch_adapter::merge(&current, &body)?,
                };
                let obj = state
                    .lock()
                    .set_scale(&info, version, ns, name, &patched, &opts)?;
                return Ok(ok(&scale_of(&info, version, &obj)));
            }
            if !matches!(sub, None | Some("status")) {
                return Err(ApiError::method_not_allowed());
            }
            let mut cluster = state.lock();
            let existed = cluster.get(&info, ns, name).is_ok();
            let obj = cluster.patch(&info, version, ns, name, sub, patch_type, body, &opts)?;
            drop(cluster);
            state.forget_removed_pods();
            let code = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(object_response(&info, version, meta_only, code, &obj))
        }
        ("delete", Some(name), None) => {
            let body = decode(&read_body(body).await?, &content_type).unwrap_or(Value::Null);
            let (obj, gone) = state
                .lock()
                .delete(&info, ns, name, &delete_options(q, &body))?;
            state.forget_removed_pods();
            let code = if gone {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            Ok(object_response(&info, version, meta_only, code, &obj))
        }
        ("deletecollection", None, None) => {
            let body = decode(&read_body(body).await?, &content_type).unwrap_or(Value::Null);
            let items = state.lock().delete_collection(
                &info,
                ns,
                &list_options(&info, q)?,
                &delete_options(q, &body),
            )?;
            state.forget_removed_pods();
            let rv = state.lock().store.current_rv();
            Ok(list_body(&info, version, meta_only, &items, rv, None, None))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The `autoscaling/v1` Scale of an object.
fn scale_of(info: &ResourceInfo, version: &str, obj: &Value) -> Value {
    let spec = info
        .version(version)
        .and_then(|v| v.scale.clone())
        .expect("scale subresource");
    let at = |p: &str| meta::lookup(obj, p.trim_start_matches('.')).cloned();
    let mut status =
        json!({"replicas": at(&spec.status_replicas_path).and_then(|v| v.as_i64()).unwrap_or(0)});
    let selector = match &spec.label_selector_path {
        Some(p) => at(p).and_then(|v| v.as_str().map(str::to_owned)),
        None => obj
            .pointer("/spec/selector")
            .and_then(LabelSelector::from_object)
            .map(|_| selector_string(obj.pointer("/spec/selector").unwrap_or(&Value::Null))),
    };
    if let Some(s) = selector {
        status["selector"] = json!(s);
    }
    let m = meta::metadata(obj);
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"), "namespace": m.get("namespace"), "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"), "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": at(&spec.spec_replicas_path).and_then(|v| v.as_i64()).unwrap_or(0)},
        "status": status,
    })
}

/// `matchLabels` as the `a=b,c=d` string Scale reports.
fn selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", meta::field_string(v)))
        .collect();
    parts.sort();
    parts.join(",")
}
