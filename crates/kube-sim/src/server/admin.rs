//! `/sim/...` admin endpoints: request accounting, fault rules, history compaction and the
//! simulated SQL Servers' and SingleStore nodes' state.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::ServerState;
use super::handler::{json_response, ok, read_body};
use crate::error::{ApiError, ApiResult};
use crate::faults::FaultSpec;

/// `/sim/...` admin endpoints: request accounting and fault rules.
pub(super) async fn sim_admin(
    state: &Arc<ServerState>,
    method: &Method,
    segs: &[String],
    body: Body,
) -> ApiResult<Response> {
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["requests"]) => Ok(ok(
            &serde_json::to_value(state.accounting.snapshot()).expect("serializable")
        )),
        ("GET", ["faults"]) => Ok(ok(
            &serde_json::to_value(state.faults.list()).expect("serializable")
        )),
        ("POST", ["faults"]) => {
            let bytes = read_body(body).await?;
            let spec: FaultSpec = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("invalid fault rule: {e}")))?;
            let id = state.faults.add(spec);
            Ok(json_response(StatusCode::CREATED, &json!({"id": id})))
        }
        ("DELETE", ["faults"]) => {
            state.faults.clear();
            Ok(ok(&json!({})))
        }
        ("DELETE", ["faults", id]) => {
            let id: u64 = id
                .parse()
                .map_err(|_| ApiError::bad_request("fault id must be a number"))?;
            if state.faults.remove(id) {
                Ok(ok(&json!({})))
            } else {
                Err(ApiError::new(
                    404,
                    "NotFound",
                    format!("no fault rule {id}"),
                ))
            }
        }
        ("GET", ["sql-servers"]) => Ok(ok(&state.sql_servers.world().summary())),
        ("GET", ["singlestore"]) => Ok(ok(&state.singlestore.world().summary())),
        ("POST", ["compact"]) => {
            state.lock().store.compact();
            Ok(ok(&json!({})))
        }
        _ => Err(ApiError::no_route()),
    }
}
