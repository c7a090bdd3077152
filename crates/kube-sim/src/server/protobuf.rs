//! Decoding of the Kubernetes protobuf envelope for the few request bodies kubectl sends as
//! protobuf (`kubectl create namespace|configmap|secret|serviceaccount`, the Eviction of
//! `kubectl drain`). Responses are always
//! JSON, which every client accepts. Other kinds sent as protobuf get 415 UnsupportedMediaType.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

const MAGIC: &[u8] = b"k8s\0";

/// One protobuf field: number and value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

/// Splits a message into its fields; `None` on malformed input.
fn fields(buf: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wire) = (key >> 3, key & 7);
        let value = match wire {
            0 => Field::Varint(varint(buf, &mut pos)?),
            1 => {
                pos += 8;
                continue;
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len())?;
                let b = &buf[pos..end];
                pos = end;
                Field::Bytes(b)
            }
            5 => {
                pos += 4;
                continue;
            }
            _ => return None,
        };
        out.push((num, value));
    }
    (pos == buf.len()).then_some(out)
}

fn string(b: &[u8]) -> Option<Value> {
    Some(Value::String(String::from_utf8(b.to_vec()).ok()?))
}

/// A `map<string, V>` entry (key = 1, value = 2).
fn map_entry(b: &[u8], bytes_value: bool) -> Option<(String, Value)> {
    let mut key = String::new();
    let mut value = Value::String(String::new());
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(k)) => key = String::from_utf8(k.to_vec()).ok()?,
            (2, Field::Bytes(v)) if bytes_value => value = Value::String(crate::meta::base64(v)),
            (2, Field::Bytes(v)) => value = string(v)?,
            _ => {}
        }
    }
    Some((key, value))
}

fn insert_entry(obj: &mut Map<String, Value>, key: &str, entry: (String, Value)) {
    let m = obj.entry(key).or_insert_with(|| json!({}));
    m[entry.0] = entry.1;
}

fn push(obj: &mut Map<String, Value>, key: &str, v: Value) {
    let a = obj.entry(key).or_insert_with(|| json!([]));
    if let Some(a) = a.as_array_mut() {
        a.push(v);
    }
}

fn owner_reference(b: &[u8]) -> Option<Value> {
    let mut r = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(v)) => _ = r.insert("kind".into(), string(v)?),
            (3, Field::Bytes(v)) => _ = r.insert("name".into(), string(v)?),
            (4, Field::Bytes(v)) => _ = r.insert("uid".into(), string(v)?),
            (5, Field::Bytes(v)) => _ = r.insert("apiVersion".into(), string(v)?),
            (6, Field::Varint(v)) => _ = r.insert("controller".into(), json!(v != 0)),
            (7, Field::Varint(v)) => _ = r.insert("blockOwnerDeletion".into(), json!(v != 0)),
            _ => {}
        }
    }
    Some(Value::Object(r))
}

fn object_meta(b: &[u8]) -> Option<Value> {
    let mut m = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(v)) => _ = m.insert("name".into(), string(v)?),
            (2, Field::Bytes(v)) => _ = m.insert("generateName".into(), string(v)?),
            (3, Field::Bytes(v)) => _ = m.insert("namespace".into(), string(v)?),
            (6, Field::Bytes(v)) => _ = m.insert("resourceVersion".into(), string(v)?),
            (11, Field::Bytes(v)) => insert_entry(&mut m, "labels", map_entry(v, false)?),
            (12, Field::Bytes(v)) => insert_entry(&mut m, "annotations", map_entry(v, false)?),
            (13, Field::Bytes(v)) => push(&mut m, "ownerReferences", owner_reference(v)?),
            (14, Field::Bytes(v)) => push(&mut m, "finalizers", string(v)?),
            _ => {}
        }
    }
    Some(Value::Object(m))
}

/// `DeleteOptions` (inside an Eviction, as `kubectl drain` sends it).
fn delete_options(b: &[u8]) -> Option<Value> {
    let mut o = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Varint(v)) => _ = o.insert("gracePeriodSeconds".into(), json!(v as i64)),
            (2, Field::Bytes(p)) => {
                let mut pre = Map::new();
                for (pn, pf) in fields(p)? {
                    match (pn, pf) {
                        (1, Field::Bytes(v)) => _ = pre.insert("uid".into(), string(v)?),
                        (2, Field::Bytes(v)) => {
                            _ = pre.insert("resourceVersion".into(), string(v)?)
                        }
                        _ => {}
                    }
                }
                o.insert("preconditions".into(), Value::Object(pre));
            }
            (3, Field::Varint(v)) => _ = o.insert("orphanDependents".into(), json!(v != 0)),
            (4, Field::Bytes(v)) => _ = o.insert("propagationPolicy".into(), string(v)?),
            (5, Field::Bytes(v)) => push(&mut o, "dryRun", string(v)?),
            _ => {}
        }
    }
    Some(Value::Object(o))
}

fn decode_kind(kind: &str, raw: &[u8]) -> Option<Option<Map<String, Value>>> {
    let mut obj = Map::new();
    let parsed = fields(raw)?;
    for (n, f) in parsed {
        let Field::Bytes(b) = f else {
            match (kind, n, f) {
                ("ConfigMap", 4, Field::Varint(v)) | ("Secret", 5, Field::Varint(v)) => {
                    obj.insert("immutable".into(), json!(v != 0));
                }
                _ => {}
            }
            continue;
        };
        match (kind, n) {
            (_, 1) => _ = obj.insert("metadata".into(), object_meta(b)?),
            ("Namespace", 2) => {
                let mut spec = Map::new();
                for (sn, sf) in fields(b)? {
                    if let (1, Field::Bytes(v)) = (sn, sf) {
                        push(&mut spec, "finalizers", string(v)?);
                    }
                }
                obj.insert("spec".into(), Value::Object(spec));
            }
            ("ConfigMap", 2) => insert_entry(&mut obj, "data", map_entry(b, false)?),
            ("ConfigMap", 3) => insert_entry(&mut obj, "binaryData", map_entry(b, true)?),
            ("Secret", 2) => insert_entry(&mut obj, "data", map_entry(b, true)?),
            ("Secret", 3) => _ = obj.insert("type".into(), string(b)?),
            ("Secret", 4) => insert_entry(&mut obj, "stringData", map_entry(b, false)?),
            ("Eviction", 2) => _ = obj.insert("deleteOptions".into(), delete_options(b)?),
            ("Namespace" | "ConfigMap" | "Secret" | "ServiceAccount" | "Eviction", _) => {}
            _ => return Some(None),
        }
    }
    Some(Some(obj))
}

/// Decodes a protobuf-encoded request body into the JSON object it represents.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let bad = || ApiError::bad_request("malformed protobuf request body");
    let envelope = body.strip_prefix(MAGIC).ok_or_else(bad)?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (n, f) in fields(envelope).ok_or_else(bad)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (tn, tf) in fields(tm).ok_or_else(bad)? {
                    match (tn, tf) {
                        (1, Field::Bytes(v)) => {
                            api_version = String::from_utf8_lossy(v).into_owned()
                        }
                        (2, Field::Bytes(v)) => kind = String::from_utf8_lossy(v).into_owned(),
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    let supported = matches!(
        kind.as_str(),
        "Namespace" | "ConfigMap" | "Secret" | "ServiceAccount" | "Eviction"
    );
    let obj = decode_kind(&kind, raw).ok_or_else(bad)?;
    match obj {
        Some(mut obj) if supported => {
            obj.insert("apiVersion".into(), json!(api_version));
            obj.insert("kind".into(), json!(kind));
            Ok(Value::Object(obj))
        }
        _ => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "kube-sim decodes protobuf bodies only for Namespace, ConfigMap, Secret, ServiceAccount and Eviction (got {kind}); send JSON"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![((n << 3) | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn decodes_a_namespace_envelope() {
        let labels = [field(1, b"team"), field(2, b"a")].concat();
        let meta = [field(1, b"demo"), field(11, &labels)].concat();
        let ns = field(1, &meta);
        let type_meta = [field(1, b"v1"), field(2, b"Namespace")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &ns)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "labels": {"team": "a"}}})
        );
    }

    #[test]
    fn decodes_secret_bytes_as_base64() {
        let entry = [field(1, b"k"), field(2, b"foo")].concat();
        let secret = [
            field(1, &field(1, b"s")),
            field(2, &entry),
            field(3, b"Opaque"),
        ]
        .concat();
        let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &secret)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(v["data"]["k"], "Zm9v");
        assert_eq!(v["type"], "Opaque");
    }

    #[test]
    fn decodes_an_eviction() {
        let opts = [vec![1 << 3, 5], field(2, &field(1, b"u1"))].concat();
        let ev = [field(1, &field(1, b"p")), field(2, &opts)].concat();
        let type_meta = [field(1, b"policy/v1"), field(2, b"Eviction")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &ev)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(
            v["deleteOptions"],
            json!({"gracePeriodSeconds": 5, "preconditions": {"uid": "u1"}})
        );
        assert_eq!(v["metadata"]["name"], "p");
    }

    #[test]
    fn other_kinds_are_unsupported() {
        let type_meta = [field(1, b"apps/v1"), field(2, b"Deployment")].concat();
        let body = [
            MAGIC.to_vec(),
            field(1, &type_meta),
            field(2, &field(1, &field(1, b"d"))),
        ]
        .concat();
        assert_eq!(decode(&body).unwrap_err().code, 415);
        assert_eq!(decode(b"garbage").unwrap_err().code, 400);
    }
}
