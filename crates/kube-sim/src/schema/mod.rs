//! OpenAPI v3 schema processing for custom resources, in the API server's order: prune unknown
//! fields ([`prune`]), apply defaults ([`apply_defaults`]), validate the structural schema
//! ([`validate`]), then evaluate CEL `x-kubernetes-validations` rules ([`validate_cel`]).
//! [`process`] runs all four.
//!
//! Errors are [`FieldError`]s whose [`Display`](FieldError) and [`FieldError::body`] match the
//! API server's `field.Error` texts, e.g.
//! `spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1`.
//!
//! The root `metadata` is the API server's business (ObjectMeta validation): here only its
//! `name` and `generateName` are checked against the schema, and it is never pruned or defaulted.

mod cel;
mod structural;
mod validate;

pub use cel::validate_cel;
pub use structural::{apply_defaults, prune};
pub use validate::validate;

use serde_json::Value;
use std::fmt;

/// The kind of a field error, as `k8s.io/apimachinery/pkg/util/validation/field` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `FieldValueRequired`: "Required value".
    Required,
    /// `FieldValueInvalid`: "Invalid value".
    Invalid,
    /// `FieldValueNotSupported`: "Unsupported value".
    NotSupported,
    /// `FieldValueTooLong`: "Too long" (the value is not shown).
    TooLong,
    /// `FieldValueTooMany`: "Too many".
    TooMany,
    /// `FieldValueTypeInvalid`: "Invalid value" (a type mismatch).
    TypeInvalid,
    /// `FieldValueForbidden`: "Forbidden".
    Forbidden,
    /// `FieldValueDuplicate`: "Duplicate value".
    Duplicate,
}

impl ErrorKind {
    /// The `reason` of a `metav1.StatusCause` (`FieldValueInvalid`, ...).
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::NotSupported => "FieldValueNotSupported",
            ErrorKind::TooLong => "FieldValueTooLong",
            ErrorKind::TooMany => "FieldValueTooMany",
            ErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::Duplicate => "FieldValueDuplicate",
        }
    }

    fn label(self) -> &'static str {
        match self {
            ErrorKind::Required => "Required value",
            ErrorKind::Invalid | ErrorKind::TypeInvalid => "Invalid value",
            ErrorKind::NotSupported => "Unsupported value",
            ErrorKind::TooLong => "Too long",
            ErrorKind::TooMany => "Too many",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::Duplicate => "Duplicate value",
        }
    }

    /// Whether the error text shows the bad value.
    fn shows_value(self) -> bool {
        !matches!(
            self,
            ErrorKind::Required | ErrorKind::Forbidden | ErrorKind::TooLong
        )
    }
}

/// One validation error on one field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The field path, e.g. `spec.replicas`, `spec.items[0].name`, `spec.labels[app]`.
    pub field: String,
    /// What kind of error.
    pub kind: ErrorKind,
    /// The detail message (may be empty).
    pub detail: String,
    /// The offending value, shown by the kinds that show one.
    pub bad_value: Value,
}

impl FieldError {
    fn new(field: &str, kind: ErrorKind, bad_value: Value, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            kind,
            detail: detail.into(),
            bad_value,
        }
    }

    /// `field.Invalid`.
    pub fn invalid(field: &str, bad_value: Value, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorKind::Invalid, bad_value, detail)
    }

    /// `field.Required`.
    pub fn required(field: &str, detail: impl Into<String>) -> Self {
        Self::new(
            field,
            ErrorKind::Required,
            Value::String(String::new()),
            detail,
        )
    }

    /// The message without the field, as in a `StatusCause.message`
    /// (`Invalid value: 0: spec.replicas in body should be greater than or equal to 1`).
    pub fn body(&self) -> String {
        let mut s = self.kind.label().to_owned();
        if self.kind.shows_value() {
            s.push_str(": ");
            s.push_str(&go_value(&self.bad_value));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

/// `<field>: <body>`, the text of a Go `field.Error`.
impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Renders a bad value the way `field.Error` does: numbers and booleans plainly, strings quoted,
/// anything else as JSON.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Null => "null".to_owned(),
        Value::Number(n) => go_number(n),
        other => other.to_string(),
    }
}

/// A JSON number as Go prints it with `%v`: integers plainly, floats in the shortest form with
/// an exponent (`1e+06`) below 1e-4 or from 1e6 on.
pub(crate) fn go_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let exp = f.abs().log10().floor() as i32;
    if !(-4..6).contains(&exp) {
        // Rust writes `1.5e6`; Go writes `1.5e+06`.
        let rust = format!("{f:e}");
        let (mantissa, e) = rust.split_once('e').unwrap_or((&rust, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        let sign = if e < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", e.abs())
    } else {
        format!("{f}")
    }
}

/// Go's `%q` for the strings we produce (JSON string escaping is the same for printable text).
fn go_quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Prunes, defaults and validates a custom resource `object` against a CRD version's
/// `openAPIV3Schema`, then evaluates its CEL rules; `old` is the stored object on update (for
/// transition rules). Returns the pruned field paths (for `fieldValidation` warnings or
/// strict errors: `unknown field "spec.foo"`) or the validation errors.
pub fn process(
    schema: &Value,
    object: &mut Value,
    old: Option<&Value>,
) -> Result<Vec<String>, Vec<FieldError>> {
    let pruned = prune(schema, object);
    apply_defaults(schema, object);
    let mut errors = validate(schema, object);
    // As the API server: type, required, enum and size violations mean the object does not have
    // the shape the CEL rules were written for, so they are skipped with a note.
    let blocking = errors.iter().any(|e| {
        matches!(
            e.kind,
            ErrorKind::NotSupported
                | ErrorKind::Required
                | ErrorKind::TooLong
                | ErrorKind::TooMany
                | ErrorKind::TypeInvalid
        )
    });
    if blocking {
        errors.push(FieldError::invalid(
            "<nil>",
            Value::Null,
            "some validation rules were not checked because the object was invalid; correct the \
             existing errors to complete validation",
        ));
    } else {
        errors.extend(validate_cel(schema, object, old));
    }
    if errors.is_empty() {
        Ok(pruned)
    } else {
        Err(errors)
    }
}

/// A field path in the API server's notation, built while walking.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldPath(String);

impl FieldPath {
    pub(crate) fn child(&self, name: &str) -> FieldPath {
        if self.0.is_empty() {
            FieldPath(name.to_owned())
        } else {
            FieldPath(format!("{}.{name}", self.0))
        }
    }

    pub(crate) fn index(&self, i: usize) -> FieldPath {
        FieldPath(format!("{}[{i}]", self.0))
    }

    pub(crate) fn key(&self, k: &str) -> FieldPath {
        FieldPath(format!("{}[{k}]", self.0))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

/// Small accessors for schema nodes.
pub(crate) mod node {
    use serde_json::{Map, Value};

    pub fn ty(s: &Value) -> Option<&str> {
        s.get("type").and_then(Value::as_str)
    }

    pub fn flag(s: &Value, name: &str) -> bool {
        s.get(name).and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn properties(s: &Value) -> Option<&Map<String, Value>> {
        s.get("properties").and_then(Value::as_object)
    }

    /// The schema of `additionalProperties` when it is a schema (not a boolean).
    pub fn additional(s: &Value) -> Option<&Value> {
        s.get("additionalProperties").filter(|a| a.is_object())
    }

    pub fn items(s: &Value) -> Option<&Value> {
        s.get("items").filter(|i| i.is_object())
    }

    pub fn preserves_unknown(s: &Value) -> bool {
        flag(s, "x-kubernetes-preserve-unknown-fields")
            || s.get("additionalProperties").and_then(Value::as_bool) == Some(true)
    }

    pub fn embedded(s: &Value) -> bool {
        flag(s, "x-kubernetes-embedded-resource")
    }

    pub fn int_or_string(s: &Value) -> bool {
        flag(s, "x-kubernetes-int-or-string")
    }

    pub fn nullable(s: &Value) -> bool {
        flag(s, "nullable")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_texts_match_the_api_server() {
        let cases = [
            (
                FieldError::invalid(
                    "spec.replicas",
                    json!(0),
                    "spec.replicas in body should be greater than or equal to 1",
                ),
                "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
            ),
            (
                FieldError::required("spec.version", ""),
                "spec.version: Required value",
            ),
            (
                FieldError::new(
                    "spec.mode",
                    ErrorKind::NotSupported,
                    json!("x"),
                    "supported values: \"a\", \"b\"",
                ),
                "spec.mode: Unsupported value: \"x\": supported values: \"a\", \"b\"",
            ),
            (
                FieldError::new(
                    "spec.name",
                    ErrorKind::TooLong,
                    json!("<value omitted>"),
                    "may not be more than 3 bytes",
                ),
                "spec.name: Too long: may not be more than 3 bytes",
            ),
            (
                FieldError::new(
                    "status.conditions[1]",
                    ErrorKind::Duplicate,
                    json!({"type": "Ready"}),
                    "",
                ),
                "status.conditions[1]: Duplicate value: {\"type\":\"Ready\"}",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
        assert_eq!(ErrorKind::TypeInvalid.reason(), "FieldValueTypeInvalid");
    }

    #[test]
    fn numbers_print_like_go() {
        let cases = [
            (json!(1), "1"),
            (json!(1.0), "1"),
            (json!(1.5), "1.5"),
            (json!(100000.0), "100000"),
            (json!(1000000.0), "1e+06"),
            (json!(1500000.0), "1.5e+06"),
            (json!(0.00001), "1e-05"),
            (json!(-3), "-3"),
        ];
        for (v, text) in cases {
            let Value::Number(n) = v else { unreachable!() };
            assert_eq!(go_number(&n), text);
        }
    }
}

#[cfg(test)]
mod derive_tests;
