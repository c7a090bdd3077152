//! CEL validation rules (`x-kubernetes-validations`) evaluated with the `cel` crate.
//!
//! Supported: `rule` with `self`, transition rules with `oldSelf` (evaluated only on update,
//! where the old value correlates: object properties, map values and list-map items by key;
//! with `optionalOldSelf: true` also on create, `oldSelf` then being an optional),
//! `message`, `messageExpression`, `fieldPath` (dotted, `['key']` and `[n]` steps) and `reason`.
//! Property names are escaped as on the API server (`self.max__dash__size`). Functions: the CEL
//! standard library plus the Kubernetes libraries of kube-rs' `kube-cel` (strings, lists,
//! sets, regex, quantity, format, math, semver, ip/cidr); `date-time`/`date` strings are
//! timestamps and `duration` strings durations. Not available: the `url` library, cost limits
//! and compile-time type checking (type errors surface at evaluation as "... evaluating rule:
//! ..." errors instead of failing the CRD).

use super::node;
use super::{ErrorKind, FieldError, FieldPath};
use kube_cel::KubeCelExt;
use kube_cel::cel::{self, Context, Program};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// Evaluates every `x-kubernetes-validations` rule of `schema` on `object` (with `old` on
/// update for transition rules) and returns the failures as field errors.
pub fn validate_cel(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    walk(
        schema,
        object,
        old,
        &FieldPath::default(),
        true,
        &mut errors,
    );
    errors
}

fn walk(
    s: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &FieldPath,
    root: bool,
    errors: &mut Vec<FieldError>,
) {
    if v.is_null() {
        return;
    }
    // Children first is not required; the API server reports rules top-down.
    if let Some(Value::Array(rules)) = s.get("x-kubernetes-validations") {
        for rule in rules {
            if let Some(e) = evaluate_rule(rule, s, v, old, path, root) {
                errors.push(e);
            }
        }
    }
    match v {
        Value::Object(map) => {
            let props = node::properties(s);
            let additional = node::additional(s);
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                if root && key == "metadata" {
                    continue;
                }
                let old_child = old.and_then(|o| o.get(key));
                match (props.and_then(|p| p.get(key)), additional) {
                    (Some(ps), _) => {
                        walk(ps, &map[key], old_child, &path.child(key), false, errors)
                    }
                    (None, Some(a)) => walk(a, &map[key], old_child, &path.key(key), false, errors),
                    (None, None) => {}
                }
            }
        }
        Value::Array(items) => {
            let Some(is) = node::items(s) else { return };
            let keys: Option<Vec<&str>> = (s.get("x-kubernetes-list-type").and_then(Value::as_str)
                == Some("map"))
            .then(|| {
                s.get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|k| k.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default()
            });
            let old_items = old.and_then(Value::as_array);
            for (i, item) in items.iter().enumerate() {
                let old_item = match (&keys, old_items) {
                    (Some(keys), Some(olds)) => olds.iter().find(|o| {
                        keys.iter()
                            .all(|k| o.get(k).is_some() && o.get(k) == item.get(k))
                    }),
                    _ => None,
                };
                walk(is, item, old_item, &path.index(i), false, errors);
            }
        }
        _ => {}
    }
}

thread_local! {
    /// A root context with the Kubernetes CEL libraries registered; rules run in child scopes.
    static ROOT: Context<'static> = Context::default().with_all();
    static PROGRAMS: RefCell<HashMap<String, Result<Rc<Program>, String>>> = RefCell::new(HashMap::new());
}

/// Compiles (once per thread) a CEL expression.
fn compile(expr: &str) -> Result<Rc<Program>, String> {
    PROGRAMS.with(|cache| {
        if let Some(p) = cache.borrow().get(expr) {
            return p.clone();
        }
        let compiled = Program::compile(expr)
            .map(Rc::new)
            .map_err(|e| e.to_string());
        cache.borrow_mut().insert(expr.to_owned(), compiled.clone());
        compiled
    })
}

enum Outcome {
    Pass,
    Fail,
    Error(String),
}

fn run(
    program: &Program,
    this: &cel::Value,
    old: Option<&cel::Value>,
) -> Result<cel::Value, String> {
    ROOT.with(|root| {
        let mut ctx = root.new_inner_scope();
        ctx.add_variable_from_value("self", this.clone());
        if let Some(o) = old {
            ctx.add_variable_from_value("oldSelf", o.clone());
        }
        program.execute(&ctx).map_err(|e| e.to_string())
    })
}

fn evaluate_rule(
    rule: &Value,
    s: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &FieldPath,
    root: bool,
) -> Option<FieldError> {
    let text = rule.get("rule").and_then(Value::as_str)?;
    let program = match compile(text) {
        Ok(p) => p,
        Err(e) => {
            return Some(FieldError::invalid(
                path.as_str(),
                type_value(s),
                format!("compilation failed: {e}"),
            ));
        }
    };
    let transition = program.references().has_variable("oldSelf");
    // With `optionalOldSelf`, a transition rule also runs on create, seeing an optional oldSelf.
    let optional_old = transition && node::flag(rule, "optionalOldSelf");
    if transition && old.is_none() && !optional_old {
        return None;
    }
    let this = to_cel(v, Some(s), root);
    let old_cel = match (transition, optional_old) {
        (false, _) => None,
        (true, false) => old.map(|o| to_cel(o, Some(s), root)),
        (true, true) => {
            let inner = match old {
                Some(o) => cel::objects::OptionalValue::of(to_cel(o, Some(s), root)),
                None => cel::objects::OptionalValue::none(),
            };
            Some(cel::Value::Opaque(Arc::new(inner)))
        }
    };
    let outcome = match run(&program, &this, old_cel.as_ref()) {
        Ok(cel::Value::Bool(true)) => Outcome::Pass,
        Ok(cel::Value::Bool(false)) => Outcome::Fail,
        Ok(other) => Outcome::Error(format!("rule did not evaluate to a bool: {other:?}")),
        Err(e) => Outcome::Error(e),
    };
    let field_path = match rule.get("fieldPath").and_then(Value::as_str) {
        Some(fp) => append_field_path(path, fp),
        None => path.clone(),
    };
    let detail = match outcome {
        Outcome::Pass => return None,
        Outcome::Error(e) => {
            // Go's CEL errors start in lower case ("no such key: x").
            let mut chars = e.chars();
            let e: String = chars
                .next()
                .map(|c| c.to_ascii_lowercase())
                .into_iter()
                .chain(chars)
                .collect();
            return Some(FieldError::invalid(
                path.as_str(),
                type_value(s),
                format!("{e} evaluating rule: {}", rule_text(rule)),
            ));
        }
        Outcome::Fail => message(rule, &this, old_cel.as_ref()),
    };
    let reason = rule
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("FieldValueInvalid");
    let p = field_path.as_str();
    Some(match reason {
        "FieldValueForbidden" => FieldError::new(
            p,
            ErrorKind::Forbidden,
            Value::String(String::new()),
            detail,
        ),
        "FieldValueRequired" => FieldError::required(p, detail),
        "FieldValueDuplicate" => FieldError::new(p, ErrorKind::Duplicate, type_value(s), ""),
        _ => FieldError::invalid(p, type_value(s), detail),
    })
}

/// The rule's message: a `messageExpression` that yields a non-empty one-line string, else the
/// `message`, else `failed rule: <rule>`.
fn message(rule: &Value, this: &cel::Value, old: Option<&cel::Value>) -> String {
    if let Some(expr) = rule.get("messageExpression").and_then(Value::as_str)
        && let Ok(program) = compile(expr)
        && let Ok(cel::Value::String(s)) = run(&program, this, old)
    {
        let s = s.trim();
        if !s.is_empty() && !s.contains('\n') {
            return s.to_owned();
        }
    }
    match rule.get("message").and_then(Value::as_str).map(str::trim) {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => format!("failed rule: {}", rule_text(rule)),
    }
}

fn rule_text(rule: &Value) -> String {
    match rule.get("message").and_then(Value::as_str).map(str::trim) {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => rule
            .get("rule")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_owned(),
    }
}

/// The schema type shown as the bad value of CEL errors (`"object"`, `"string"`, ...).
fn type_value(s: &Value) -> Value {
    Value::String(node::ty(s).unwrap_or("").to_owned())
}

/// Appends a rule's `fieldPath` (`.spec.x`, `.a['b']`, `.list[0]`) to the node's path.
fn append_field_path(base: &FieldPath, fp: &str) -> FieldPath {
    let mut out = base.clone();
    let mut rest = fp;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            out = out.child(&r[..end]);
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").unwrap_or(r.len());
            out = out.child(&r[..end]);
            rest = r.get(end + 2..).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap_or(r.len());
            match r[..end].parse::<usize>() {
                Ok(i) => out = out.index(i),
                Err(_) => out = out.key(&r[..end]),
            }
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out = out.child(&rest[..end]);
            rest = &rest[end..];
        }
    }
    out
}

/// Converts JSON to a CEL value, typed by the schema where it says more than JSON does
/// (`number` fields are doubles even when integral). At the root (and for embedded resources)
/// `metadata` exposes only `name` and `generateName`, as on a real API server.
fn to_cel(v: &Value, s: Option<&Value>, root: bool) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => {
            let as_double = s.and_then(node::ty) == Some("number");
            match (n.as_i64(), as_double) {
                (Some(i), false) => cel::Value::Int(i),
                _ => match n.as_u64() {
                    Some(u) if !as_double => cel::Value::UInt(u),
                    _ => cel::Value::Float(n.as_f64().unwrap_or(0.0)),
                },
            }
        }
        Value::String(text) => {
            let format = s.and_then(|s| s.get("format")).and_then(Value::as_str);
            typed_string(text, format).unwrap_or_else(|| cel::Value::String(Arc::new(text.clone())))
        }
        Value::Array(items) => {
            let is = s.and_then(node::items);
            cel::Value::List(Arc::new(
                items.iter().map(|i| to_cel(i, is, false)).collect(),
            ))
        }
        Value::Object(map) => {
            let embedded = root || s.is_some_and(node::embedded);
            let props = s.and_then(node::properties);
            let additional = s.and_then(node::additional);
            let mut out: HashMap<String, cel::Value> = HashMap::with_capacity(map.len());
            for (k, child) in map {
                let declared = props.and_then(|p| p.get(k));
                let value = if embedded && k == "metadata" {
                    metadata_view(child)
                } else {
                    to_cel(child, declared.or(additional), false)
                };
                // Declared properties are CEL fields, named with the API server's escaping;
                // map entries keep their keys.
                let name = if declared.is_some() {
                    escape_property(k)
                } else {
                    Some(k.clone())
                };
                if let Some(name) = name {
                    out.insert(name, value);
                }
            }
            out.into()
        }
    }
}

/// CEL reserved words a property name is escaped from (`__namespace__`).
const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// The CEL name of a schema property, escaped as the API server does (`x-y` is `x__dash__y`,
/// `a.b` is `a__dot__b`, `namespace` is `__namespace__`); `None` for names CEL cannot reach.
fn escape_property(name: &str) -> Option<String> {
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || "_.-/".contains(c));
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c)) {
        return None;
    }
    Some(
        name.replace("__", "__underscores__")
            .replace('.', "__dot__")
            .replace('-', "__dash__")
            .replace('/', "__slash__"),
    )
}

/// Strings with `format: date-time`/`date` are CEL timestamps and `duration` strings CEL
/// durations, as on the API server; converted with CEL's own `timestamp()`/`duration()`.
/// `None` keeps the string (other formats, or a value that does not parse).
fn typed_string(text: &str, format: Option<&str>) -> Option<cel::Value> {
    let (expr, arg) = match format? {
        "date-time" | "datetime" => ("timestamp(s)", text.to_owned()),
        "date" => ("timestamp(s)", format!("{text}T00:00:00Z")),
        "duration" => ("duration(s)", text.to_owned()),
        _ => return None,
    };
    let program = compile(expr).ok()?;
    ROOT.with(|root| {
        let mut ctx = root.new_inner_scope();
        ctx.add_variable_from_value("s", cel::Value::String(Arc::new(arg)));
        program.execute(&ctx).ok()
    })
}

fn metadata_view(meta: &Value) -> cel::Value {
    let mut out: HashMap<String, cel::Value> = HashMap::new();
    for k in ["name", "generateName"] {
        if let Some(Value::String(s)) = meta.get(k) {
            out.insert(k.to_owned(), cel::Value::String(Arc::new(s.clone())));
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.minReplicas <= self.replicas", "message": "replicas must be at least minReplicas"},
            {"rule": "!has(self.mode) || self.mode != 'Bad'", "messageExpression": "'mode ' + self.mode + ' is not allowed'", "fieldPath": ".mode"},
            {"rule": "self.replicas == oldSelf.replicas || self.mode != 'Frozen'", "message": "frozen", "reason": "FieldValueForbidden"},
            {"rule": "self.ratio < 1.0"}
        ],
        "properties": {
            "replicas": {"type": "integer"}, "minReplicas": {"type": "integer"},
            "mode": {"type": "string"}, "ratio": {"type": "number"},
            "version": {"type": "string", "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "Value is immutable"}]},
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "size": {"type": "integer"}},
                    "x-kubernetes-validations": [{"rule": "self.size >= oldSelf.size", "message": "cannot shrink"}]}},
            "names": {"type": "array", "items": {"type": "string"},
                "x-kubernetes-validations": [{"rule": "self.all(n, n.startsWith('db-')) && self.size() <= 3"}]}
        }}}})
    }

    fn obj(spec: Value) -> Value {
        json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n"}, "spec": spec})
    }

    fn errors(spec: Value, old: Option<Value>) -> Vec<String> {
        let old = old.map(obj);
        validate_cel(&schema(), &obj(spec), old.as_ref())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn rules_on_create() {
        let ok = json!({"replicas": 3, "minReplicas": 1, "ratio": 0, "names": ["db-0"]});
        assert_eq!(errors(ok, None), Vec::<String>::new());
        let cases = [
            (
                json!({"replicas": 1, "minReplicas": 2, "ratio": 0}),
                r#"spec: Invalid value: "object": replicas must be at least minReplicas"#,
            ),
            (
                json!({"replicas": 1, "minReplicas": 1, "mode": "Bad", "ratio": 0}),
                r#"spec.mode: Invalid value: "object": mode Bad is not allowed"#,
            ),
            (
                json!({"replicas": 1, "minReplicas": 1, "ratio": 2}),
                r#"spec: Invalid value: "object": failed rule: self.ratio < 1.0"#,
            ),
            (
                json!({"replicas": 1, "minReplicas": 1, "ratio": 0, "names": ["x"]}),
                r#"spec.names: Invalid value: "array": failed rule: self.all(n, n.startsWith('db-')) && self.size() <= 3"#,
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(
                errors(spec.clone(), None),
                vec![expected.to_owned()],
                "{spec}"
            );
        }
    }

    #[test]
    fn transition_rules_only_on_update() {
        let old = json!({"replicas": 1, "minReplicas": 1, "ratio": 0, "mode": "Frozen", "version": "1",
            "items": [{"name": "a", "size": 5}]});
        let new = json!({"replicas": 2, "minReplicas": 1, "ratio": 0, "mode": "Frozen", "version": "2",
            "items": [{"name": "b", "size": 1}, {"name": "a", "size": 4}]});
        assert_eq!(errors(new.clone(), None), Vec::<String>::new());
        assert_eq!(
            errors(new, Some(old)),
            vec![
                "spec: Forbidden: frozen".to_owned(),
                r#"spec.items[1]: Invalid value: "object": cannot shrink"#.to_owned(),
                r#"spec.version: Invalid value: "string": Value is immutable"#.to_owned(),
            ]
        );
    }

    #[test]
    fn optional_old_self_runs_on_create() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "!oldSelf.hasValue() || self.size >= oldSelf.value().size",
                "optionalOldSelf": true, "message": "size cannot shrink"},
                {"rule": "oldSelf.hasValue() || self.size < 10", "optionalOldSelf": true, "message": "too big to create"}],
            "properties": {"size": {"type": "integer"}}}}});
        let obj = |size: i64| json!({"spec": {"size": size}});
        let errs = |new: Value, old: Option<Value>| -> Vec<String> {
            validate_cel(&schema, &new, old.as_ref())
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert!(errs(obj(5), None).is_empty());
        assert_eq!(
            errs(obj(50), None),
            vec![r#"spec: Invalid value: "object": too big to create"#]
        );
        assert!(errs(obj(50), Some(obj(40))).is_empty());
        assert_eq!(
            errs(obj(3), Some(obj(4))),
            vec![r#"spec: Invalid value: "object": size cannot shrink"#]
        );
    }

    #[test]
    fn date_time_and_duration_strings_are_typed() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.end > self.start && self.end - self.start <= self.window"}],
            "properties": {"start": {"type": "string", "format": "date-time"}, "end": {"type": "string", "format": "date-time"},
                "window": {"type": "string", "format": "duration"}}}}});
        let obj = |end: &str| json!({"spec": {"start": "2024-01-01T00:00:00Z", "end": end, "window": "1h"}});
        assert!(validate_cel(&schema, &obj("2024-01-01T00:30:00Z"), None).is_empty());
        assert_eq!(
            validate_cel(&schema, &obj("2024-01-01T02:00:00Z"), None).len(),
            1
        );
    }

    #[test]
    fn evaluation_errors_are_reported() {
        // minReplicas absent: `self.minReplicas` has no such key.
        let errs = errors(json!({"replicas": 1, "ratio": 0}), None);
        assert_eq!(
            errs,
            vec![
                r#"spec: Invalid value: "object": no such key: minReplicas evaluating rule: replicas must be at least minReplicas"#
            ]
        );
    }

    #[test]
    fn escaped_property_names() {
        let cases = [
            ("plain", Some("plain")),
            ("x-y", Some("x__dash__y")),
            ("a.b/c", Some("a__dot__b__slash__c")),
            ("a__b", Some("a__underscores__b")),
            ("namespace", Some("__namespace__")),
            ("1abc", None),
            ("a b", None),
        ];
        for (name, escaped) in cases {
            assert_eq!(escape_property(name).as_deref(), escaped, "{name}");
        }
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.max__dash__size > 0 && self.__namespace__ == 'a' && self.labels['x-y'] == 'z'"}],
            "properties": {"max-size": {"type": "integer"}, "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}}});
        let ok = json!({"spec": {"max-size": 1, "namespace": "a", "labels": {"x-y": "z"}}});
        assert!(validate_cel(&schema, &ok, None).is_empty());
        let bad = json!({"spec": {"max-size": 0, "namespace": "a", "labels": {"x-y": "z"}}});
        assert_eq!(validate_cel(&schema, &bad, None).len(), 1);
    }

    #[test]
    fn kubernetes_cel_libraries_are_available() {
        let rules = [
            "quantity(self.size).isGreaterThan(quantity('1Gi'))",
            "self.tags.isSorted() && self.tags.sum() == 6",
            "self.name.lowerAscii() == 'db' && self.name.matches('^[A-Za-z]+$')",
            "isCIDR(self.cidr) && cidr(self.cidr).containsIP(ip('10.1.2.3'))",
        ];
        for rule in rules {
            let schema = json!({"type": "object", "x-kubernetes-validations": [{"rule": rule}], "properties": {
                "size": {"type": "string"}, "tags": {"type": "array", "items": {"type": "integer"}},
                "name": {"type": "string"}, "cidr": {"type": "string"}}});
            let obj = json!({"size": "2Gi", "tags": [1, 2, 3], "name": "DB", "cidr": "10.0.0.0/8"});
            assert_eq!(validate_cel(&schema, &obj, None), Vec::new(), "{rule}");
            let bad =
                json!({"size": "1Mi", "tags": [3, 2, 1], "name": "D-B", "cidr": "192.168.0.0/16"});
            assert_eq!(validate_cel(&schema, &bad, None).len(), 1, "{rule}");
        }
    }

    #[test]
    fn field_paths() {
        let base = FieldPath::default().child("spec");
        assert_eq!(append_field_path(&base, ".a.b").as_str(), "spec.a.b");
        assert_eq!(
            append_field_path(&base, ".a['x-y'].c").as_str(),
            "spec.a.x-y.c"
        );
        assert_eq!(
            append_field_path(&base, ".list[2]").as_str(),
            "spec.list[2]"
        );
    }
}
