//! Glue between the API server and [`crate::schema`]: custom resources are pruned, defaulted and
//! validated against their CRD version's `openAPIV3Schema` (CEL rules included).

use serde_json::Value;

use crate::error::{ApiError, ApiResult, Cause};
use crate::meta;
use crate::registry::ResourceInfo;

/// Prunes, defaults and validates `obj` in place. With `strict` (`fieldValidation=Strict`),
/// unknown fields are an error instead of being dropped silently.
pub fn admit(
    info: &ResourceInfo,
    schema: &Value,
    obj: &mut Value,
    old: Option<&Value>,
    strict: bool,
) -> ApiResult<()> {
    match crate::schema::process(schema, obj, old) {
        Ok(pruned) if strict && !pruned.is_empty() => {
            let list: Vec<String> = pruned
                .iter()
                .map(|p| format!("unknown field \"{p}\""))
                .collect();
            Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                list.join(", ")
            )))
        }
        Ok(_) => Ok(()),
        Err(errors) => {
            let causes = errors
                .iter()
                .map(|e| Cause {
                    reason: e.kind.reason().to_owned(),
                    message: e.body(),
                    field: e.field.clone(),
                })
                .collect();
            Err(ApiError::invalid(
                &info.group,
                &info.kind,
                meta::name(obj),
                causes,
            ))
        }
    }
}
