//! How paged lists are documented: an operation answering a list takes `limit` and `cursor`,
//! and its 200 documents the `X-Next-Cursor` and `Link` headers of a page with a next one.

use serde_json::{json, Value};

use super::paths::{Body, Operation};
use crate::pagination::{DEFAULT_LIMIT, LIMIT_RANGE, NEXT_CURSOR_HEADER};

/// Whether the operation answers a list (and so takes `limit` and `cursor`).
pub(super) fn lists(operation: &Operation) -> bool {
    operation
        .success
        .iter()
        .any(|(_, _, body)| matches!(body, Body::List(_)))
}

/// The headers of a list page that has a next one.
pub(super) fn page_headers() -> Value {
    json!({
        NEXT_CURSOR_HEADER: {
            "description": "present when more items follow: pass it as `cursor` to get them",
            "schema": { "type": "string" },
        },
        "Link": {
            "description": "present when more items follow: `<same path and query with cursor=…>; rel=\"next\"`",
            "schema": { "type": "string" },
        },
    })
}

/// The `limit` and `cursor` query parameters.
pub(super) fn page_parameters() -> [Value; 2] {
    [
        json!({
            "name": "limit", "in": "query", "required": false,
            "description": "items per page (default 100); anything else is 400",
            "schema": { "type": "integer", "minimum": LIMIT_RANGE.0, "maximum": LIMIT_RANGE.1, "default": DEFAULT_LIMIT },
        }),
        json!({
            "name": "cursor", "in": "query", "required": false,
            "description": "the X-Next-Cursor of the previous page of this same list, unchanged; a malformed cursor or one of another list is 400",
            "schema": { "type": "string" },
        }),
    ]
}
