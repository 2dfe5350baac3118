//! The listing cache (issue 17, ADR 0035): rendered pages of `GET /api/projects` and
//! `GET /api/sandboxes` (body bytes and pagination headers), so a repeated listing is a hash
//! lookup and a write instead of a query, a conversion and a JSON rendering.
//!
//! Staleness rule: an entry is served only while (1) the org's write epoch (`osb_store`'s
//! `listing_epoch`, bumped after every store write to the org's projects or sandboxes in this
//! process, and by events of other processes — `change_events`) still equals the epoch read
//! *before* the entry's query, and (2) it is younger than `ttl` (1 s by default), the backstop
//! for writes no event announces (`osbd admin`, another gateway's project writes, straight SQL).
//! Past half its ttl, one request refreshes a page while the others are still served it.
//!
//! Tenant isolation: the key holds the org, the key's scope, the path and the raw query string;
//! an entry is looked up only by the caller's own org. Bounded in entries and bytes, overall and
//! per org. It must never hold anything but rendered views (which carry names, never values) and
//! never serve an entry whose org epoch moved.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse};
use osb_proto::OrgId;
use osb_store::ListingEpoch;

use super::auth::Caller;
use super::error::ApiError;
use super::pagination::RenderedPage;
use super::scopes::KeyScope;
use super::state::AppState;

/// How long a page is served without asking the store again when no write is seen.
pub const DEFAULT_LISTING_TTL: Duration = Duration::from_secs(1);
/// Most pages held at once, overall and per org.
pub const DEFAULT_LISTING_ENTRIES: usize = 4096;
pub const DEFAULT_LISTING_ENTRIES_PER_ORG: usize = 256;
/// Most bytes (bodies and headers) held at once.
pub const DEFAULT_LISTING_BYTES: usize = 32 * 1024 * 1024;
/// Sets the ttl in milliseconds (`0` turns the cache off: the bench's uncached baseline, or an
/// operator ruling the cache out); absent, the default.
pub const LISTING_TTL_ENV: &str = "OPENSANDBOX_LISTING_CACHE_TTL_MS";
/// The longest ttl the setting accepts: staleness beyond this would break ADR 0035's rule.
pub const MAX_LISTING_TTL: Duration = Duration::from_secs(1);

/// What a cached page depends on besides the org: everything in the request that can change
/// the response.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListingKey {
    pub scope: KeyScope,
    /// The request path (the `Link` header repeats it).
    pub path: String,
    /// The raw query string (`limit`, `cursor`; the `Link` header depends on its spelling).
    pub query: String,
}

#[derive(Debug)]
struct Entry {
    page: RenderedPage,
    epoch: ListingEpoch,
    read_at: Instant,
    /// One request was sent to the store to refresh this page ahead of its expiry.
    refreshing: bool,
}

#[derive(Debug, Default)]
struct OrgPages {
    pages: HashMap<ListingKey, Entry>,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Pages {
    orgs: HashMap<OrgId, OrgPages>,
    entries: usize,
    bytes: usize,
}

impl Pages {
    fn remove_org(&mut self, org: &OrgId) {
        if let Some(gone) = self.orgs.remove(org) {
            self.entries -= gone.pages.len();
            self.bytes -= gone.bytes;
        }
    }

    fn remove(&mut self, org: &OrgId, key: &ListingKey) {
        let Some(pages) = self.orgs.get_mut(org) else {
            return;
        };
        if let Some(gone) = pages.pages.remove(key) {
            let weight = gone.page.weight();
            pages.bytes -= weight;
            self.entries -= 1;
            self.bytes -= weight;
        }
        if pages.pages.is_empty() {
            self.orgs.remove(org);
        }
    }
}

/// Bounds of a [`ListingCache`].
#[derive(Debug, Clone, Copy)]
pub struct ListingBounds {
    pub ttl: Duration,
    pub entries: usize,
    pub entries_per_org: usize,
    pub bytes: usize,
}

impl Default for ListingBounds {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_LISTING_TTL,
            entries: DEFAULT_LISTING_ENTRIES,
            entries_per_org: DEFAULT_LISTING_ENTRIES_PER_ORG,
            bytes: DEFAULT_LISTING_BYTES,
        }
    }
}

impl ListingBounds {
    /// The defaults with the ttl `setting` (`OPENSANDBOX_LISTING_CACHE_TTL_MS`) when given.
    pub fn from_setting(setting: Option<&str>) -> Result<Self, String> {
        let Some(text) = setting.map(str::trim).filter(|text| !text.is_empty()) else {
            return Ok(Self::default());
        };
        let ttl = text
            .parse::<u64>()
            .ok()
            .map(Duration::from_millis)
            .filter(|ttl| *ttl <= MAX_LISTING_TTL)
            .ok_or_else(|| {
                format!(
                    "{LISTING_TTL_ENV} must be a whole number of milliseconds from 0 (off) to {}, got {:?}",
                    MAX_LISTING_TTL.as_millis(),
                    text.chars().take(20).collect::<String>()
                )
            })?;
        Ok(Self {
            ttl,
            ..Self::default()
        })
    }
}

/// (org, key) → the rendered page, its epoch and when its query started.
#[derive(Debug)]
pub struct ListingCache {
    bounds: ListingBounds,
    /// The ttl in microseconds (`bounds.ttl` at start; `set_ttl` changes it).
    ttl_micros: AtomicU64,
    pages: Mutex<Pages>,
}

impl Default for ListingCache {
    fn default() -> Self {
        Self::new(ListingBounds::default())
    }
}

impl ListingCache {
    /// A cache with these bounds (a zero `ttl` or `entries` turns it off).
    pub fn new(bounds: ListingBounds) -> Self {
        Self {
            bounds,
            ttl_micros: AtomicU64::new(micros(bounds.ttl)),
            pages: Mutex::new(Pages::default()),
        }
    }

    /// Changes the ttl of every page, held or future (tests lengthen it to prove that
    /// invalidation, not expiry, makes a write visible; zero turns the cache off).
    pub fn set_ttl(&self, ttl: Duration) {
        self.ttl_micros.store(micros(ttl), Ordering::Relaxed);
    }

    fn ttl(&self) -> Duration {
        Duration::from_micros(self.ttl_micros.load(Ordering::Relaxed))
    }

    /// The page of `org` under `key` if it was read at `epoch` (the org's epoch now) less than
    /// `ttl` before `now`. Past half its ttl, the first caller is told to refresh it (`None`)
    /// while everyone else is still served the valid page, so a busy listing never expires
    /// under load and its refresh is one query, not one per waiting connection.
    pub fn get(
        &self,
        org: OrgId,
        key: &ListingKey,
        epoch: ListingEpoch,
        now: Instant,
    ) -> Option<RenderedPage> {
        let ttl = self.ttl();
        let mut pages = self.lock();
        let entry = pages.orgs.get_mut(&org)?.pages.get_mut(key)?;
        let age = now.saturating_duration_since(entry.read_at);
        if entry.epoch == epoch && age < ttl {
            if age >= ttl / 2 && !entry.refreshing {
                entry.refreshing = true;
                return None;
            }
            return Some(entry.page.clone());
        }
        // Stale for good: the epoch only moves forward and time too.
        pages.remove(&org, key);
        None
    }

    /// Keeps `page` of `org` read at `epoch`, whose query started at `read_at` (both taken
    /// *before* the query, so a write racing the query leaves an entry that is never served).
    pub fn put(
        &self,
        org: OrgId,
        key: ListingKey,
        page: RenderedPage,
        epoch: ListingEpoch,
        read_at: Instant,
    ) {
        let bounds = self.bounds;
        let ttl = self.ttl();
        let weight = page.weight();
        if ttl.is_zero() || bounds.entries == 0 || weight > bounds.bytes {
            return;
        }
        let mut pages = self.lock();
        pages.remove(&org, &key);
        let org_full = pages
            .orgs
            .get(&org)
            .is_some_and(|held| held.pages.len() >= bounds.entries_per_org.max(1));
        if org_full {
            // One org cycling through many cursors evicts only its own pages.
            pages.remove_org(&org);
        }
        if pages.entries >= bounds.entries || pages.bytes + weight > bounds.bytes {
            // Full: drop what can no longer be served, then whole orgs until the page fits (a
            // refill costs one query per page; the bound on memory is what matters).
            let mut freed = (0, 0);
            for held in pages.orgs.values_mut() {
                held.pages.retain(|_, entry| {
                    let keep = read_at.saturating_duration_since(entry.read_at) < ttl;
                    if !keep {
                        freed.0 += 1;
                        freed.1 += entry.page.weight();
                        held.bytes -= entry.page.weight();
                    }
                    keep
                });
            }
            pages.orgs.retain(|_, held| !held.pages.is_empty());
            pages.entries -= freed.0;
            pages.bytes -= freed.1;
            while pages.entries >= bounds.entries || pages.bytes + weight > bounds.bytes {
                let Some(victim) = pages.orgs.keys().next().copied() else {
                    break;
                };
                pages.remove_org(&victim);
            }
        }
        let held = pages.orgs.entry(org).or_default();
        held.bytes += weight;
        held.pages.insert(
            key,
            Entry {
                page,
                epoch,
                read_at,
                refreshing: false,
            },
        );
        pages.entries += 1;
        pages.bytes += weight;
    }

    /// Pages and bytes held (tests, metrics).
    pub fn size(&self) -> (usize, usize) {
        let pages = self.lock();
        (pages.entries, pages.bytes)
    }

    /// Every cached body, concatenated (canary tests: proof of what the cache holds).
    pub fn held_bytes(&self) -> Vec<u8> {
        let pages = self.lock();
        let mut out = Vec::new();
        for held in pages.orgs.values() {
            for entry in held.pages.values() {
                out.extend_from_slice(&entry.page.body);
                if let Some((cursor, link)) = &entry.page.next {
                    out.extend_from_slice(cursor.as_bytes());
                    out.extend_from_slice(link.as_bytes());
                }
            }
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pages> {
        // Every update keeps the counters consistent before returning, so a panic elsewhere
        // while the lock was held cannot leave them half-written: recover the map.
        self.pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn micros(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_micros()).unwrap_or(u64::MAX)
}

/// Answers a listing from the cache, or renders it with `render` (which parses the query and
/// reads the store) and keeps the page. The epoch and the clock are read before `render`.
pub(crate) async fn serve<Render>(
    state: &AppState,
    caller: Caller,
    request: &HttpRequest,
    render: Render,
) -> Result<HttpResponse, ApiError>
where
    Render: std::future::Future<Output = Result<RenderedPage, ApiError>>,
{
    let key = ListingKey {
        scope: caller.scope,
        path: request.path().to_owned(),
        query: request.query_string().to_owned(),
    };
    let epoch = osb_store::listing_epoch(caller.org_id);
    let read_at = Instant::now();
    if let Some(page) = state.listings.get(caller.org_id, &key, epoch, read_at) {
        return Ok(page.response());
    }
    // Refusals (a bad cursor or limit) are errors here and never cached.
    let page = render.await?;
    let response = page.response();
    state.listings.put(caller.org_id, key, page, epoch, read_at);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn page(body: &str) -> RenderedPage {
        RenderedPage {
            body: Bytes::from(body.to_owned()),
            next: None,
        }
    }

    fn key(query: &str) -> ListingKey {
        ListingKey {
            scope: KeyScope::Admin,
            path: "/api/projects".into(),
            query: query.into(),
        }
    }

    fn body(page: Option<RenderedPage>) -> Option<String> {
        page.map(|page| String::from_utf8_lossy(&page.body).into_owned())
    }

    #[test]
    fn a_page_is_served_only_at_its_epoch_and_within_the_ttl() {
        let cache = ListingCache::new(ListingBounds::default());
        let org = OrgId::new();
        let now = Instant::now();
        let epoch = osb_store::listing_epoch(org);
        cache.put(org, key(""), page("[1]"), epoch, now);
        assert_eq!(
            body(cache.get(org, &key(""), epoch, now)).as_deref(),
            Some("[1]")
        );
        let later = now + Duration::from_millis(999);
        assert!(
            cache.get(org, &key(""), epoch, later).is_none(),
            "past half its ttl the first caller refreshes"
        );
        assert!(cache.get(org, &key(""), epoch, later).is_some());
        assert!(cache
            .get(org, &key(""), epoch, now + DEFAULT_LISTING_TTL)
            .is_none());
        assert_eq!(cache.size().0, 0, "an expired page is dropped when seen");

        cache.put(org, key(""), page("[1]"), epoch, now);
        osb_store::note_listing_change(org);
        let moved = osb_store::listing_epoch(org);
        assert!(cache.get(org, &key(""), moved, now).is_none());
    }

    #[test]
    fn past_half_its_ttl_one_caller_refreshes_and_the_others_are_served() {
        let cache = ListingCache::new(ListingBounds::default());
        let org = OrgId::new();
        let start = Instant::now();
        let epoch = osb_store::listing_epoch(org);
        cache.put(org, key(""), page("[1]"), epoch, start);
        let half = start + DEFAULT_LISTING_TTL / 2;
        assert!(
            cache.get(org, &key(""), epoch, half).is_none(),
            "the refresher"
        );
        for _ in 0..10 {
            assert!(
                cache.get(org, &key(""), epoch, half).is_some(),
                "the others"
            );
        }
        // The refresher's page replaces the old one.
        cache.put(org, key(""), page("[2]"), epoch, half);
        let later = half + DEFAULT_LISTING_TTL / 4;
        assert_eq!(
            body(cache.get(org, &key(""), epoch, later)).as_deref(),
            Some("[2]")
        );
        // A refresher that never comes back leaves the page to expire at its ttl, no later.
        let at_half_again = half + DEFAULT_LISTING_TTL / 2;
        assert!(cache.get(org, &key(""), epoch, at_half_again).is_none());
        assert!(cache.get(org, &key(""), epoch, at_half_again).is_some());
        assert!(cache
            .get(org, &key(""), epoch, half + DEFAULT_LISTING_TTL)
            .is_none());
    }

    #[test]
    fn another_org_or_key_never_gets_the_page() {
        let cache = ListingCache::new(ListingBounds::default());
        let (a, b) = (OrgId::new(), OrgId::new());
        let now = Instant::now();
        cache.put(
            a,
            key("limit=1"),
            page("[\"a\"]"),
            osb_store::listing_epoch(a),
            now,
        );
        assert!(cache
            .get(b, &key("limit=1"), osb_store::listing_epoch(b), now)
            .is_none());
        assert!(cache
            .get(a, &key("limit=2"), osb_store::listing_epoch(a), now)
            .is_none());
        let read_scope = ListingKey {
            scope: KeyScope::Read,
            ..key("limit=1")
        };
        assert!(cache
            .get(a, &read_scope, osb_store::listing_epoch(a), now)
            .is_none());
    }

    #[test]
    fn entries_and_bytes_stay_within_the_bounds() {
        let bounds = ListingBounds {
            ttl: Duration::from_secs(60),
            entries: 10,
            entries_per_org: 4,
            bytes: 64,
        };
        let cache = ListingCache::new(bounds);
        let now = Instant::now();
        for n in 0..200 {
            let org = OrgId::new();
            for p in 0..6 {
                cache.put(
                    org,
                    key(&format!("cursor={p}")),
                    page(&format!("[{n:04}]")),
                    osb_store::listing_epoch(org),
                    now,
                );
                let (entries, bytes) = cache.size();
                assert!(
                    entries <= 10 && bytes <= 64,
                    "{entries} pages, {bytes} bytes"
                );
            }
        }
        let (entries, _) = cache.size();
        assert!(entries > 0, "the newest pages are kept");
        let huge = page(&"x".repeat(65));
        let org = OrgId::new();
        cache.put(org, key(""), huge, osb_store::listing_epoch(org), now);
        assert!(cache
            .get(org, &key(""), osb_store::listing_epoch(org), now)
            .is_none());
    }

    #[test]
    fn the_ttl_setting_is_checked() {
        let ttl = |setting| ListingBounds::from_setting(setting).map(|bounds| bounds.ttl);
        assert_eq!(ttl(None), Ok(DEFAULT_LISTING_TTL));
        assert_eq!(ttl(Some(" ")), Ok(DEFAULT_LISTING_TTL));
        assert_eq!(ttl(Some("0")), Ok(Duration::ZERO));
        assert_eq!(ttl(Some("250")), Ok(Duration::from_millis(250)));
        for bad in ["-1", "1s", "1001"] {
            let error = ttl(Some(bad)).unwrap_err();
            assert!(error.contains(LISTING_TTL_ENV), "{error}");
        }
    }

    #[test]
    fn a_zero_ttl_turns_the_cache_off() {
        let cache = ListingCache::new(ListingBounds {
            ttl: Duration::ZERO,
            ..ListingBounds::default()
        });
        let org = OrgId::new();
        let now = Instant::now();
        cache.put(org, key(""), page("[]"), osb_store::listing_epoch(org), now);
        assert_eq!(cache.size(), (0, 0));
        cache.set_ttl(Duration::from_secs(5));
        cache.put(org, key(""), page("[]"), osb_store::listing_epoch(org), now);
        assert_eq!(cache.size().0, 1);
        cache.set_ttl(Duration::ZERO);
        assert!(cache
            .get(org, &key(""), osb_store::listing_epoch(org), now)
            .is_none());
    }
}
