//! Structural schema validation with the API server's (go-openapi/kube-openapi) messages.

use super::node;
use super::{ErrorKind, FieldError, FieldPath, go_number};
use regex::Regex;
use serde_json::{Map, Value, json};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Validates `object` against `schema`: types (integer vs number, `nullable`,
/// `x-kubernetes-int-or-string`), `required`, `enum`, `pattern`, cheap `format`s, numeric
/// bounds, `multipleOf`, lengths, item and property counts, `uniqueItems`, list-set and list-map
/// uniqueness, `allOf`/`anyOf`/`oneOf`/`not`. At the root, `metadata` is checked only for the
/// `name` and `generateName` constraints of the schema.
pub fn validate(schema: &Value, object: &Value) -> Vec<FieldError> {
    let mut v = Validator { errors: Vec::new() };
    v.node(schema, object, &FieldPath::default());
    v.errors
}

struct Validator {
    errors: Vec<FieldError>,
}

/// The JSON type name go-openapi reports for a value.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if is_integer(n) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64()
        || n.is_u64()
        || n.as_f64()
            .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match (ty, v) {
        ("object", Value::Object(_))
        | ("array", Value::Array(_))
        | ("string", Value::String(_))
        | ("boolean", Value::Bool(_))
        | ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => is_integer(n),
        _ => false,
    }
}

impl Validator {
    fn push(&mut self, e: FieldError) {
        self.errors.push(e);
    }

    fn invalid(&mut self, path: &FieldPath, bad: Value, msg: String) {
        self.push(FieldError::invalid(path.as_str(), bad, msg));
    }

    fn node(&mut self, s: &Value, v: &Value, path: &FieldPath) {
        let p = path.as_str();
        let ty = node::ty(s);
        if v.is_null() {
            if !node::nullable(s)
                && let Some(ty) = ty
            {
                self.type_error(path, ty, v);
            }
            return;
        }
        if node::int_or_string(s) {
            if !matches!(v, Value::String(_)) && !type_matches("integer", v) {
                self.type_error(path, "integer,string", v);
                return;
            }
        } else if let Some(ty) = ty
            && !type_matches(ty, v)
        {
            self.type_error(path, ty, v);
            return;
        }
        if let Some(Value::Array(allowed)) = s.get("enum")
            && !allowed.contains(v)
        {
            let supported: Vec<String> = allowed
                .iter()
                .map(|a| match a {
                    Value::String(s) => super::go_quote(s),
                    other => super::go_quote(&other.to_string()),
                })
                .collect();
            self.push(FieldError::new(
                p,
                ErrorKind::NotSupported,
                v.clone(),
                format!("supported values: {}", supported.join(", ")),
            ));
        }
        match v {
            Value::String(text) => self.string(s, text, v, path),
            Value::Number(n) => self.number(s, n, v, path),
            Value::Array(items) => self.array(s, items, path),
            Value::Object(map) => self.object(s, map, path),
            _ => {}
        }
        self.combinators(s, v, path);
    }

    fn type_error(&mut self, path: &FieldPath, ty: &str, v: &Value) {
        let actual = type_name(v);
        let p = path.as_str();
        self.push(FieldError::new(
            p,
            ErrorKind::TypeInvalid,
            json!(actual),
            format!("{p} in body must be of type {ty}: \"{actual}\""),
        ));
    }

    fn string(&mut self, s: &Value, text: &str, v: &Value, path: &FieldPath) {
        let p = path.as_str();
        let len = text.chars().count() as u64;
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            let unit = if max == 1 { "byte" } else { "bytes" };
            self.push(FieldError::new(
                p,
                ErrorKind::TooLong,
                json!("<value omitted>"),
                format!("may not be more than {max} {unit}"),
            ));
        }
        if let Some(min) = s.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            self.invalid(
                path,
                v.clone(),
                format!("{p} in body should be at least {min} chars long"),
            );
        }
        if let Some(pattern) = s.get("pattern").and_then(Value::as_str) {
            // An uncompilable pattern is rejected when the CRD is created; ignore it here.
            if Regex::new(pattern).is_ok_and(|re| !re.is_match(text)) {
                self.invalid(
                    path,
                    v.clone(),
                    format!("{p} in body should match '{pattern}'"),
                );
            }
        }
        if let Some(format) = s.get("format").and_then(Value::as_str)
            && !format_ok(format, text)
        {
            self.push(FieldError::new(
                p,
                ErrorKind::TypeInvalid,
                v.clone(),
                format!(
                    "{p} in body must be of type {format}: {}",
                    super::go_quote(text)
                ),
            ));
        }
    }

    fn number(&mut self, s: &Value, n: &serde_json::Number, v: &Value, path: &FieldPath) {
        let p = path.as_str();
        let x = n.as_f64().unwrap_or(0.0);
        let bound = |k: &str| s.get(k).and_then(Value::as_number);
        if let Some(max) = bound("maximum") {
            let m = max.as_f64().unwrap_or(f64::MAX);
            if node::flag(s, "exclusiveMaximum") {
                if x >= m {
                    self.invalid(
                        path,
                        v.clone(),
                        format!("{p} in body should be less than {}", go_number(max)),
                    );
                }
            } else if x > m {
                self.invalid(
                    path,
                    v.clone(),
                    format!(
                        "{p} in body should be less than or equal to {}",
                        go_number(max)
                    ),
                );
            }
        }
        if let Some(min) = bound("minimum") {
            let m = min.as_f64().unwrap_or(f64::MIN);
            if node::flag(s, "exclusiveMinimum") {
                if x <= m {
                    self.invalid(
                        path,
                        v.clone(),
                        format!("{p} in body should be greater than {}", go_number(min)),
                    );
                }
            } else if x < m {
                self.invalid(
                    path,
                    v.clone(),
                    format!(
                        "{p} in body should be greater than or equal to {}",
                        go_number(min)
                    ),
                );
            }
        }
        if let Some(factor) = bound("multipleOf") {
            let f = factor.as_f64().unwrap_or(1.0);
            if f != 0.0 && ((x / f).fract()).abs() > 1e-9 {
                self.invalid(
                    path,
                    v.clone(),
                    format!("{p} in body should be a multiple of {}", go_number(factor)),
                );
            }
        }
    }

    fn array(&mut self, s: &Value, items: &[Value], path: &FieldPath) {
        let p = path.as_str();
        let len = items.len() as u64;
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
            && len > max
        {
            let unit = if max == 1 { "item" } else { "items" };
            self.push(FieldError::new(
                p,
                ErrorKind::TooMany,
                json!(len),
                format!("must have at most {max} {unit}"),
            ));
        }
        if let Some(min) = s.get("minItems").and_then(Value::as_u64)
            && len < min
        {
            self.invalid(
                path,
                json!(len),
                format!("{p} in body should have at least {min} items"),
            );
        }
        if node::flag(s, "uniqueItems") && has_duplicates(items) {
            self.invalid(
                path,
                json!(""),
                format!("{p} in body shouldn't contain duplicates"),
            );
        }
        if let Some(is) = node::items(s) {
            for (i, item) in items.iter().enumerate() {
                self.node(is, item, &path.index(i));
            }
        }
        match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => {
                for (i, item) in items.iter().enumerate() {
                    if items[..i].contains(item) {
                        self.push(FieldError::new(
                            path.index(i).as_str(),
                            ErrorKind::Duplicate,
                            item.clone(),
                            "",
                        ));
                    }
                }
            }
            Some("map") => self.list_map(s, items, path),
            _ => {}
        }
    }

    fn list_map(&mut self, s: &Value, items: &[Value], path: &FieldPath) {
        let keys: Vec<&str> = s
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|k| k.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let item_props = node::items(s).and_then(node::properties);
        let mut seen: Vec<Map<String, Value>> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Value::Object(m) = item else {
                if !item.is_null() {
                    self.invalid(
                        &path.index(i),
                        item.clone(),
                        "must be an object for an array of list-type map".into(),
                    );
                }
                continue;
            };
            let mut key = Map::new();
            for k in &keys {
                let value = m.get(*k).cloned().or_else(|| {
                    item_props
                        .and_then(|p| p.get(*k))
                        .and_then(|ks| ks.get("default"))
                        .cloned()
                });
                if let Some(value) = value {
                    key.insert((*k).to_owned(), value);
                }
            }
            if seen.contains(&key) {
                self.push(FieldError::new(
                    path.index(i).as_str(),
                    ErrorKind::Duplicate,
                    Value::Object(key),
                    "",
                ));
            } else {
                seen.push(key);
            }
        }
    }

    fn object(&mut self, s: &Value, map: &Map<String, Value>, path: &FieldPath) {
        let p = path.as_str();
        if node::embedded(s) && !map.is_empty() {
            // An embedded resource names its type, as ObjectMeta validation requires.
            for key in ["apiVersion", "kind"] {
                if map
                    .get(key)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    self.push(FieldError::required(
                        path.child(key).as_str(),
                        "must not be empty",
                    ));
                }
            }
        }
        if let Some(Value::Array(required)) = s.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                // The root `metadata` always exists on a stored object.
                let root_meta = path.is_root() && name == "metadata";
                if !root_meta && !map.contains_key(name) {
                    self.push(FieldError::required(path.child(name).as_str(), ""));
                }
            }
        }
        let count = map.len() as u64;
        if let Some(max) = s.get("maxProperties").and_then(Value::as_u64)
            && count > max
        {
            let unit = if max == 1 { "item" } else { "items" };
            self.push(FieldError::new(
                p,
                ErrorKind::TooMany,
                json!(count),
                format!("must have at most {max} {unit}"),
            ));
        }
        if let Some(min) = s.get("minProperties").and_then(Value::as_u64)
            && count < min
        {
            self.invalid(
                path,
                json!(count),
                format!("{p} in body should have at least {min} properties"),
            );
        }
        let props = node::properties(s);
        let additional = node::additional(s);
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for key in keys {
            let child = &map[key];
            if path.is_root() && key == "metadata" {
                self.root_metadata(props.and_then(|p| p.get("metadata")), child);
                continue;
            }
            match (props.and_then(|p| p.get(key)), additional) {
                (Some(ps), _) => self.node(ps, child, &path.child(key)),
                (None, Some(a)) => self.node(a, child, &path.key(key)),
                (None, None) => {}
            }
        }
    }

    /// Only `metadata.name` and `metadata.generateName` are validated by a CRD schema.
    fn root_metadata(&mut self, s: Option<&Value>, meta: &Value) {
        let Some(props) = s.and_then(node::properties) else {
            return;
        };
        let base = FieldPath::default().child("metadata");
        for name in ["name", "generateName"] {
            if let (Some(ns), Some(v)) = (props.get(name), meta.get(name)) {
                self.node(ns, v, &base.child(name));
            }
        }
    }

    fn combinators(&mut self, s: &Value, v: &Value, path: &FieldPath) {
        let p = path.as_str();
        let passes = |sub: &Value| validate_at(sub, v, path).is_empty();
        if let Some(Value::Array(all)) = s.get("allOf") {
            for sub in all {
                self.errors.extend(validate_at(sub, v, path));
            }
        }
        if let Some(Value::Array(any)) = s.get("anyOf")
            && !any.iter().any(passes)
        {
            self.invalid(
                path,
                json!(""),
                format!("{p} in body must validate at least one schema (anyOf)"),
            );
        }
        if let Some(Value::Array(one)) = s.get("oneOf")
            && one.iter().filter(|sub| passes(sub)).count() != 1
        {
            self.invalid(
                path,
                json!(""),
                format!("{p} in body must validate one and only one schema (oneOf)"),
            );
        }
        if let Some(not) = s.get("not").filter(|n| n.is_object())
            && passes(not)
        {
            self.invalid(
                path,
                json!(""),
                format!("{p} in body must not validate the schema (not)"),
            );
        }
    }
}

fn validate_at(s: &Value, v: &Value, path: &FieldPath) -> Vec<FieldError> {
    let mut sub = Validator { errors: Vec::new() };
    sub.node(s, v, path);
    sub.errors
}

fn has_duplicates(items: &[Value]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, a)| items[..i].contains(a))
}

/// Whether `text` is valid for a `format` the API server checks; unknown and numeric formats
/// (`int32`, `int64`, `float`, `double`, `password`) always pass.
fn format_ok(format: &str, text: &str) -> bool {
    match format {
        "date-time" | "datetime" => text.parse::<jiff::Timestamp>().is_ok(),
        "date" => text.parse::<jiff::civil::Date>().is_ok(),
        "ipv4" => text.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => text.parse::<Ipv6Addr>().is_ok(),
        "cidr" => text
            .split_once('/')
            .is_some_and(|(ip, bits)| ip.parse::<IpAddr>().is_ok() && bits.parse::<u8>().is_ok()),
        "uuid" | "uuid3" | "uuid4" | "uuid5" => {
            let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
            let parts: Vec<&str> = text.split('-').collect();
            parts.len() == 5 && [8, 4, 4, 4, 12].iter().zip(&parts).all(|(n, p)| hex(p, *n))
        }
        "hostname" => {
            !text.is_empty()
                && text.len() <= 253
                && text.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        }
        "byte" => {
            text.len().is_multiple_of(4)
                && text
                    .trim_end_matches('=')
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "required": ["spec"], "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}},
            "spec": {"type": "object", "required": ["version"], "properties": {
                "version": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+$"},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 9},
                "ratio": {"type": "number", "exclusiveMinimum": true, "minimum": 0},
                "mode": {"type": "string", "enum": ["Standalone", "AvailabilityGroup"]},
                "level": {"type": "integer", "enum": [1, 2]},
                "name": {"type": "string", "minLength": 2, "maxLength": 5},
                "port": {"x-kubernetes-int-or-string": true},
                "optional": {"type": "string", "nullable": true},
                "when": {"type": "string", "format": "date-time"},
                "tags": {"type": "array", "maxItems": 2, "minItems": 1, "items": {"type": "string"},
                    "x-kubernetes-list-type": "set"},
                "labels": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}},
                "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["type"],
                    "items": {"type": "object", "required": ["type"], "properties": {
                        "type": {"type": "string"}, "status": {"type": "string"}}}}
            }}
        }})
    }

    fn errors(spec: Value) -> Vec<String> {
        let obj =
            json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "ok"}, "spec": spec});
        validate(&schema(), &obj)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn valid_object_has_no_errors() {
        let spec = json!({"version": "2022.1", "replicas": 3, "ratio": 0.5, "mode": "Standalone", "level": 2,
            "name": "abc", "port": "http", "optional": null, "when": "2024-01-01T00:00:00Z",
            "tags": ["a", "b"], "labels": {"a": "b"},
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "Paused"}]});
        assert_eq!(errors(spec), Vec::<String>::new());
    }

    #[test]
    fn messages_match_the_api_server() {
        let cases = [
            (json!({}), "spec.version: Required value"),
            (
                json!({"version": "x"}),
                r#"spec.version: Invalid value: "x": spec.version in body should match '^[0-9]+\.[0-9]+$'"#,
            ),
            (
                json!({"version": "1.0", "replicas": 0}),
                "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
            ),
            (
                json!({"version": "1.0", "replicas": 10}),
                "spec.replicas: Invalid value: 10: spec.replicas in body should be less than or equal to 9",
            ),
            (
                json!({"version": "1.0", "replicas": 1.5}),
                r#"spec.replicas: Invalid value: "number": spec.replicas in body must be of type integer: "number""#,
            ),
            (
                json!({"version": "1.0", "replicas": "3"}),
                r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
            ),
            (
                json!({"version": "1.0", "replicas": null}),
                r#"spec.replicas: Invalid value: "null": spec.replicas in body must be of type integer: "null""#,
            ),
            (
                json!({"version": "1.0", "ratio": 0}),
                "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0",
            ),
            (
                json!({"version": "1.0", "mode": "x"}),
                r#"spec.mode: Unsupported value: "x": supported values: "Standalone", "AvailabilityGroup""#,
            ),
            (
                json!({"version": "1.0", "level": 3}),
                r#"spec.level: Unsupported value: 3: supported values: "1", "2""#,
            ),
            (
                json!({"version": "1.0", "name": "toolong"}),
                "spec.name: Too long: may not be more than 5 bytes",
            ),
            (
                json!({"version": "1.0", "name": "a"}),
                r#"spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long"#,
            ),
            (
                json!({"version": "1.0", "port": true}),
                r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
            ),
            (
                json!({"version": "1.0", "when": "yesterday"}),
                r#"spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday""#,
            ),
            (
                json!({"version": "1.0", "tags": ["a", "b", "c"]}),
                "spec.tags: Too many: 3: must have at most 2 items",
            ),
            (
                json!({"version": "1.0", "tags": []}),
                "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items",
            ),
            (
                json!({"version": "1.0", "tags": ["a", "a"]}),
                r#"spec.tags[1]: Duplicate value: "a""#,
            ),
            (
                json!({"version": "1.0", "labels": {"a": "1", "b": "2"}}),
                "spec.labels: Too many: 2: must have at most 1 item",
            ),
            (
                json!({"version": "1.0", "labels": {"a": 1}}),
                r#"spec.labels[a]: Invalid value: "integer": spec.labels[a] in body must be of type string: "integer""#,
            ),
            (
                json!({"version": "1.0", "conditions": [{"type": "Ready"}, {"type": "Ready"}]}),
                r#"status.conditions[1]: Duplicate value: {"type":"Ready"}"#,
            ),
            (
                json!({"version": "1.0", "conditions": [{"status": "x"}]}),
                "spec.conditions[0].type: Required value",
            ),
        ];
        for (spec, expected) in cases {
            let expected = expected.replace("status.conditions", "spec.conditions");
            assert_eq!(errors(spec.clone()), vec![expected], "spec {spec}");
        }
    }

    #[test]
    fn root_metadata_only_name_is_checked() {
        let obj = json!({"metadata": {"name": "much-too-long-name", "labels": {"a": 1}}, "spec": {"version": "1.0"}});
        let errs: Vec<String> = validate(&schema(), &obj)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec!["metadata.name: Too long: may not be more than 10 bytes"]
        );
    }

    #[test]
    fn embedded_resources_need_api_version_and_kind() {
        let s = json!({"type": "object", "properties": {"template": {"type": "object",
            "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}});
        let errs = |v: Value| {
            validate(&s, &json!({"template": v}))
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert!(errs(json!({})).is_empty());
        assert!(errs(json!({"apiVersion": "v1", "kind": "Pod", "spec": {}})).is_empty());
        assert_eq!(
            errs(json!({"kind": "Pod"})),
            vec!["template.apiVersion: Required value: must not be empty"]
        );
    }

    #[test]
    fn combinators() {
        let s = json!({"type": "object", "properties": {"a": {"type": "integer",
            "anyOf": [{"minimum": 10}, {"maximum": 0}], "not": {"enum": [42]}}}});
        let errs = |v: Value| {
            validate(&s, &json!({"a": v}))
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert!(errs(json!(11)).is_empty());
        assert_eq!(
            errs(json!(5)),
            vec![r#"a: Invalid value: "": a in body must validate at least one schema (anyOf)"#]
        );
        assert_eq!(
            errs(json!(42)),
            vec![r#"a: Invalid value: "": a in body must not validate the schema (not)"#]
        );
    }

    #[test]
    fn formats() {
        let cases = [
            ("date-time", "2024-02-03T04:05:06Z", true),
            ("date-time", "2024-02-03", false),
            ("date", "2024-02-03", true),
            ("ipv4", "10.0.0.1", true),
            ("ipv4", "10.0.0", false),
            ("ipv6", "::1", true),
            ("cidr", "10.0.0.0/8", true),
            ("uuid", "123e4567-e89b-12d3-a456-426614174000", true),
            ("uuid", "123", false),
            ("hostname", "db-0.db.default.svc", true),
            ("hostname", "-bad", false),
            ("byte", "aGVsbG8=", true),
            ("int32", "anything", true),
        ];
        for (format, text, ok) in cases {
            assert_eq!(format_ok(format, text), ok, "{format} {text}");
        }
    }
}
