//! Checks a response body against the served OpenAPI document: the operation's schema for
//! that status, resolved through `$ref`s; `type` (3.1 arrays too), `enum`, `required`,
//! `properties`, `items`, `additionalProperties`, `oneOf`/`anyOf`/`allOf`. Stricter than
//! JSON Schema on one point: an object may not carry a property its schema does not declare
//! (so the document cannot drift from what the host sends).
#![allow(dead_code)]

use serde_json::Value;

/// Validates `body` as the `status` response of `method path` (path as in the document,
/// e.g. `/v1/predictions/{id}`).
pub fn check_response(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let op = &doc["paths"][path][method];
    assert!(
        op.is_object(),
        "no operation {method} {path} in the OpenAPI document"
    );
    let response = &op["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path}: status {status} is not documented"
    );
    let content = response["content"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path} {status}: no content documented"));
    let schema = content
        .values()
        .next()
        .and_then(|c| c.get("schema"))
        .unwrap_or_else(|| panic!("{method} {path} {status}: no schema"));
    if let Err(e) = validate(doc, schema, body, "$") {
        panic!("{method} {path} {status}: {e}\nbody: {body}");
    }
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    }
}

pub fn validate(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let s = resolve(doc, schema);
    if s.as_object().is_some_and(|o| o.is_empty()) {
        return Ok(());
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = s.get(key).and_then(Value::as_array)
            && !options.iter().any(|o| validate(doc, o, v, at).is_ok())
        {
            return Err(format!("{at}: matches none of {key}"));
        }
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for o in all {
            validate(doc, o, v, at)?;
        }
    }
    match s.get("type") {
        Some(Value::String(t)) if !type_ok(t, v) => {
            return Err(format!("{at}: expected {t}, got {v}"));
        }
        Some(Value::Array(ts)) if !ts.iter().any(|t| t.as_str().is_some_and(|t| type_ok(t, v))) => {
            return Err(format!("{at}: expected one of {ts:?}, got {v}"));
        }
        _ => {}
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        return Err(format!("{at}: {v} not in {allowed:?}"));
    }
    if let Some(min) = s.get("minimum").and_then(Value::as_f64)
        && v.as_f64().is_some_and(|x| x < min)
    {
        return Err(format!("{at}: {v} below {min}"));
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(required) = s.get("required").and_then(Value::as_array) {
            for r in required {
                let r = r.as_str().unwrap_or_default();
                if !obj.contains_key(r) {
                    return Err(format!("{at}: missing required `{r}`"));
                }
            }
        }
        for (k, value) in obj {
            let here = format!("{at}.{k}");
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(doc, ps, value, &here)?,
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(true)) => {}
                    Some(extra @ Value::Object(_)) => validate(doc, extra, value, &here)?,
                    _ if props.is_some()
                        || s.get("type") == Some(&Value::String("object".into())) =>
                    {
                        return Err(format!("{here}: not declared in the schema"));
                    }
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            validate(doc, items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}
