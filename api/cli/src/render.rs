//! Human output: aligned tables for lists, `field: value` lines for one object. `--json` bypasses
//! this and prints the API's JSON unchanged. Rendering must never invent or reorder data: it only
//! picks the named fields of what the API returned.

use serde_json::Value;

pub(crate) fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A table of `columns` (JSON field names) over a list of objects.
pub(crate) fn table(rows: &Value, columns: &[&str]) -> String {
    let empty = Vec::new();
    let rows = rows.as_array().unwrap_or(&empty);
    let mut grid: Vec<Vec<String>> = vec![columns.iter().map(|c| c.to_uppercase()).collect()];
    for row in rows {
        grid.push(columns.iter().map(|column| cell(&row[*column])).collect());
    }
    let widths: Vec<usize> = (0..columns.len())
        .map(|index| {
            grid.iter()
                .map(|line| line[index].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in grid {
        let padded: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// One object as `field: value` lines, in the given order.
pub(crate) fn object(value: &Value, fields: &[&str]) -> String {
    fields
        .iter()
        .map(|field| format!("{field}: {}\n", cell(&value[*field])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_show_dashes_for_empty() {
        let rows = serde_json::json!([{"name":"web","egressAllowlist":["a.test","b.test"]},{"name":"alpha-long","egressAllowlist":[]}]);
        let text = table(&rows, &["name", "egressAllowlist"]);
        assert_eq!(
            text,
            "NAME        EGRESSALLOWLIST\nweb         a.test,b.test\nalpha-long  -\n"
        );
    }
}
