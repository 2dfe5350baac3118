//! Checks a real answer against the OpenAPI document: finds the documented operation of a
//! concrete path, the response of its status, and walks the body with the schema — types,
//! enums, required fields, and above all that every field the answer has is documented.
//! Patterns and formats are not checked (no regex engine here); the tests check ids directly.

use serde_json::Value;

pub fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            let target = document
                .pointer(pointer)
                .unwrap_or_else(|| panic!("$ref {reference} resolves"));
            resolve(document, target)
        }
        None => schema,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks `value` against `schema`: types, enums, required fields, and that every field the
/// value has is documented. Problems are appended with their JSON path.
fn check(document: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = resolve(document, schema);
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let actual = kind(value);
    let integer_as_number = actual == "integer" && allowed.contains(&"number");
    if !allowed.is_empty() && !allowed.contains(&actual) && !integer_as_number {
        problems.push(format!("{at}: {actual} where the schema says {allowed:?}"));
        return;
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            problems.push(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    match value {
        Value::Object(fields) => {
            for required in schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !fields.contains_key(required) {
                    problems.push(format!("{at}: required field {required} is missing"));
                }
            }
            for (name, field) in fields {
                let path = format!("{at}.{name}");
                if let Some(property) = schema["properties"].get(name) {
                    check(document, property, field, &path, problems);
                } else if schema["additionalProperties"].is_object() {
                    check(
                        document,
                        &schema["additionalProperties"],
                        field,
                        &path,
                        problems,
                    );
                } else {
                    problems.push(format!("{path}: field not documented"));
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                check(
                    document,
                    &schema["items"],
                    item,
                    &format!("{at}[{index}]"),
                    problems,
                );
            }
        }
        _ => {}
    }
}

/// The documented template of a concrete path (`/api/sandboxes/sbx_…` → `/api/sandboxes/{id}`).
fn template_of<'a>(document: &'a Value, method: &str, path: &str) -> &'a str {
    let segments: Vec<&str> = path.split('?').next().unwrap_or(path).split('/').collect();
    let mut best: Option<(&str, usize)> = None;
    for (template, item) in document["paths"].as_object().unwrap() {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() || item.get(method.to_lowercase()).is_none() {
            continue;
        }
        let literal = parts.iter().zip(&segments).filter(|(t, s)| t == s).count();
        let fits = parts
            .iter()
            .zip(&segments)
            .all(|(t, s)| t == s || t.starts_with('{'));
        if fits && best.is_none_or(|(_, count)| literal > count) {
            best = Some((template, literal));
        }
    }
    best.unwrap_or_else(|| panic!("{method} {path} matches no documented path"))
        .0
}

/// Asserts that a real answer is documented for its operation and status, with only
/// documented fields. An empty body must be documented without content.
pub fn assert_documented(document: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let template = template_of(document, method, path);
    let operation = &document["paths"][template][method.to_lowercase()];
    let response = operation["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| panic!("{method} {template} does not document status {status}: {body}"));
    let response = resolve(document, response);
    let content = &response["content"];
    if body.is_null() {
        assert!(
            content.is_null(),
            "{method} {template} {status}: documented with a body, answered none"
        );
        return;
    }
    let schema = &content["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {template} {status}: no JSON schema documented"
    );
    let mut problems = Vec::new();
    check(document, schema, body, "$", &mut problems);
    assert!(
        problems.is_empty(),
        "{method} {path} ({template}) {status}: {problems:#?}\n{body}"
    );
}
