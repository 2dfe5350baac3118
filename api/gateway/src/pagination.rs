//! Cursor pagination of every list endpoint: `?limit=` (1-500, default 100) and `?cursor=` (an
//! opaque string from the previous page's `X-Next-Cursor`). The body stays a JSON array; when
//! more items follow, the answer carries `X-Next-Cursor: <cursor>` and
//! `Link: <same path and query with cursor=…>; rel="next"`, and the last page has neither.
//!
//! A cursor is base64url of `v1`, the listing it belongs to (its kind, org and parent) and the
//! keyset position (a name, or `createdAt|id` for newest-first listings). It is a position, not
//! a capability: every query is still scoped to the caller's org. A malformed cursor, or one of
//! another listing, is refused with 400 naming `cursor`, never silently restarted.

use std::collections::BTreeMap;

use actix_web::http::header::ContentType;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use osb_proto::{OrgId, ProjectId, SandboxId};
use osb_store::{NewestFirstKey, Page};
use serde::Serialize;

use super::error::ApiError;

/// Items per page when `limit` is absent, and the accepted range.
pub const DEFAULT_LIMIT: u64 = 100;
pub const LIMIT_RANGE: (u64, u64) = (1, 500);
/// The response header carrying the next page's cursor.
pub const NEXT_CURSOR_HEADER: &str = "X-Next-Cursor";

const VERSION: &str = "v1";
const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Which listing a page belongs to; a cursor of one listing is refused by every other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Projects(OrgId),
    Secrets(ProjectId),
    Sandboxes(OrgId),
    Checkpoints(SandboxId),
    Snapshots(OrgId),
}

impl Listing {
    fn tag(&self) -> String {
        match self {
            Listing::Projects(org) => format!("projects:{org}"),
            Listing::Secrets(project) => format!("secrets:{project}"),
            Listing::Sandboxes(org) => format!("sandboxes:{org}"),
            Listing::Checkpoints(sandbox) => format!("checkpoints:{sandbox}"),
            Listing::Snapshots(org) => format!("snapshots:{org}"),
        }
    }
}

/// A validated `?limit=&cursor=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    pub limit: u64,
    listing: Listing,
    /// The keyset position the cursor carries (a name, or `createdAt|id`).
    position: Option<String>,
}

fn bad_cursor(why: &str) -> ApiError {
    ApiError::invalid(format!(
        "cursor is not valid: {why}; pass the X-Next-Cursor of the previous page of this same list unchanged, or leave cursor out to start at the first page"
    ))
}

impl PageQuery {
    /// Reads `limit` and `cursor` from the query string; any other parameter is refused.
    pub fn parse(request: &HttpRequest, listing: Listing) -> Result<Self, ApiError> {
        let pairs = web::Query::<Vec<(String, String)>>::from_query(request.query_string())
            .map_err(|error| ApiError::invalid(format!("query string is not valid: {error}")))?
            .into_inner();
        let mut seen = BTreeMap::new();
        for (name, value) in pairs {
            if name != "limit" && name != "cursor" {
                return Err(ApiError::invalid(format!(
                    "unknown query parameter {:?}: a list takes only limit and cursor",
                    name.chars().take(40).collect::<String>()
                )));
            }
            if seen.insert(name.clone(), value).is_some() {
                return Err(ApiError::invalid(format!("{name} is given twice")));
            }
        }
        let limit = match seen.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|limit| (LIMIT_RANGE.0..=LIMIT_RANGE.1).contains(limit))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "limit must be a whole number from {} to {}, got {:?}",
                        LIMIT_RANGE.0,
                        LIMIT_RANGE.1,
                        text.chars().take(20).collect::<String>()
                    ))
                })?,
        };
        let position = match seen.get("cursor") {
            None => None,
            Some(cursor) => Some(decode(cursor, listing)?),
        };
        Ok(Self {
            limit,
            listing,
            position,
        })
    }

    /// The position of a by-name listing: the last name of the previous page.
    pub fn after_name(&self) -> Option<&str> {
        self.position.as_deref()
    }

    /// The position of a newest-first listing.
    pub fn after_newest<Id: std::str::FromStr>(
        &self,
    ) -> Result<Option<NewestFirstKey<Id>>, ApiError> {
        let Some(position) = &self.position else {
            return Ok(None);
        };
        let (created_at, id) = position
            .split_once('|')
            .ok_or_else(|| bad_cursor("it holds no position"))?;
        let created_at = DateTime::parse_from_rfc3339(created_at)
            .map_err(|_| bad_cursor("it holds no position"))?
            .with_timezone(&Utc);
        let id = id.parse().map_err(|_| bad_cursor("it holds no position"))?;
        Ok(Some(NewestFirstKey { created_at, id }))
    }

    /// The cursor resuming after a by-name item.
    pub fn name_cursor(&self, name: &str) -> String {
        encode(self.listing, name)
    }

    /// The cursor resuming after a newest-first item.
    pub fn newest_cursor(&self, created_at: DateTime<Utc>, id: impl std::fmt::Display) -> String {
        let at = created_at.to_rfc3339_opts(SecondsFormat::Nanos, true);
        encode(self.listing, &format!("{at}|{id}"))
    }

    /// `200` with the page's items as a JSON array, plus `X-Next-Cursor` and `Link` when more
    /// follow (`next` makes the cursor from the last item).
    pub fn respond<T, V: Serialize>(
        &self,
        request: &HttpRequest,
        page: Page<T>,
        view: impl Fn(T) -> V,
        next: impl Fn(&PageQuery, &T) -> String,
    ) -> HttpResponse {
        match self.render(request, page, view, next) {
            Ok(rendered) => rendered.response(),
            Err(error) => error.error_response(),
        }
    }

    /// The page rendered once: the JSON body and the headers, as `respond` sends them (the
    /// listing cache keeps this and answers repeats with it).
    pub fn render<T, V: Serialize>(
        &self,
        request: &HttpRequest,
        page: Page<T>,
        view: impl Fn(T) -> V,
        next: impl Fn(&PageQuery, &T) -> String,
    ) -> Result<RenderedPage, ApiError> {
        let cursor = match (page.has_more, page.items.last()) {
            (true, Some(last)) => Some(next(self, last)),
            _ => None,
        };
        let items: Vec<V> = page.items.into_iter().map(view).collect();
        let body = serde_json::to_vec(&items)
            .map_err(|error| ApiError::internal("rendering the page as JSON", &error))?;
        let next = cursor.map(|cursor| {
            let mut query = format!("cursor={cursor}");
            if request.query_string().contains("limit=") {
                query = format!("limit={}&{query}", self.limit);
            }
            let link = format!("<{}?{query}>; rel=\"next\"", request.path());
            (cursor, link)
        });
        Ok(RenderedPage {
            body: Bytes::from(body),
            next,
        })
    }
}

/// A list page ready to send: the JSON array and, when more follow, the next cursor and the
/// `Link` header value.
#[derive(Debug, Clone)]
pub struct RenderedPage {
    pub body: Bytes,
    pub next: Option<(String, String)>,
}

impl RenderedPage {
    /// `200` with the body and the pagination headers.
    pub fn response(&self) -> HttpResponse {
        let mut response = HttpResponse::Ok();
        response.content_type(ContentType::json());
        if let Some((cursor, link)) = &self.next {
            response.insert_header((NEXT_CURSOR_HEADER, cursor.as_str()));
            response.insert_header(("Link", link.as_str()));
        }
        response.body(self.body.clone())
    }

    /// Bytes held (body and headers), for the cache's bound.
    pub fn weight(&self) -> usize {
        self.body.len()
            + self
                .next
                .as_ref()
                .map_or(0, |(cursor, link)| cursor.len() + link.len())
    }
}

fn encode(listing: Listing, position: &str) -> String {
    ENGINE.encode(format!("{VERSION}\n{}\n{position}", listing.tag()))
}

fn decode(cursor: &str, listing: Listing) -> Result<String, ApiError> {
    if cursor.is_empty() || cursor.len() > 1024 {
        return Err(bad_cursor("it is empty or too long"));
    }
    let bytes = ENGINE
        .decode(cursor)
        .map_err(|_| bad_cursor("it is not one this API made"))?;
    let text = String::from_utf8(bytes).map_err(|_| bad_cursor("it is not one this API made"))?;
    let mut parts = text.splitn(3, '\n');
    let (Some(VERSION), Some(tag), Some(position)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad_cursor("it is not one this API made"));
    };
    if tag != listing.tag() {
        return Err(bad_cursor("it belongs to another list"));
    }
    if position.is_empty() {
        return Err(bad_cursor("it holds no position"));
    }
    Ok(position.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_belong_to_one_listing() {
        let org = OrgId::new();
        let listing = Listing::Projects(org);
        let cursor = encode(listing, "web");
        assert_eq!(decode(&cursor, listing).unwrap(), "web");
        let other = decode(&cursor, Listing::Snapshots(org)).unwrap_err();
        assert!(other.message.contains("another list"), "{}", other.message);
        let foreign = decode(&cursor, Listing::Projects(OrgId::new())).unwrap_err();
        assert!(foreign.message.contains("cursor"));
        for bad in [
            "",
            "!!",
            "djE",
            &ENGINE.encode("v2\nx\ny"),
            &"a".repeat(2000),
        ] {
            let error = decode(bad, listing).unwrap_err();
            assert!(error.message.starts_with("cursor is not valid"), "{bad}");
        }
    }
}
