//! `GET /dashboard` and `GET /dashboard/{asset}`: the ops dashboard, hand-written HTML, CSS and
//! ES modules embedded in the binary (no build step, no CDN, no external font). The page asks
//! for an API key and keeps it in the tab's `sessionStorage`; every call it makes goes to this
//! gateway's `/api` with the key in a header (never in a URL). See `docs/dashboard.md`.
//!
//! Every answer carries a strict Content-Security-Policy (only this origin's scripts, styles,
//! images and connections; no inline script; no framing), `X-Frame-Options: DENY`,
//! `Referrer-Policy: no-referrer` and `X-Content-Type-Options: nosniff`. It must never serve a
//! file that is not in the embedded table: the asset name is looked up, never joined to a path.

use actix_web::{web, HttpResponse};

use super::error::ApiError;

/// Reads a dashboard file at compile time. The one line to change when this module moves:
/// the directory of the assets relative to this source file.
macro_rules! dashboard_file {
    ($name:literal) => {
        include_str!(concat!("../dashboard/", $name))
    };
}

/// The page's policy: nothing but this origin, no inline code, no plugins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file the page may load: name, media type, contents.
const ASSETS: &[(&str, &str, &str)] = &[
    ("style.css", CSS, dashboard_file!("style.css")),
    ("icon.svg", SVG, dashboard_file!("icon.svg")),
    ("app.js", JS, dashboard_file!("app.js")),
    ("api.js", JS, dashboard_file!("api.js")),
    ("session.js", JS, dashboard_file!("session.js")),
    ("state.js", JS, dashboard_file!("state.js")),
    ("dom.js", JS, dashboard_file!("dom.js")),
    ("format.js", JS, dashboard_file!("format.js")),
    ("event-stream.js", JS, dashboard_file!("event-stream.js")),
    ("event-model.js", JS, dashboard_file!("event-model.js")),
    ("chart.js", JS, dashboard_file!("chart.js")),
    ("view-overview.js", JS, dashboard_file!("view-overview.js")),
    (
        "view-sandboxes.js",
        JS,
        dashboard_file!("view-sandboxes.js"),
    ),
    ("view-projects.js", JS, dashboard_file!("view-projects.js")),
    ("view-feed.js", JS, dashboard_file!("view-feed.js")),
    ("view-refusals.js", JS, dashboard_file!("view-refusals.js")),
    ("view-sagas.js", JS, dashboard_file!("view-sagas.js")),
    ("view-workers.js", JS, dashboard_file!("view-workers.js")),
];

/// The page.
pub async fn page() -> HttpResponse {
    answer(HTML, dashboard_file!("index.html"))
}

/// One embedded file, by exact name.
pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    ASSETS
        .iter()
        .find(|(asset, _, _)| *asset == name)
        .map(|(_, media_type, contents)| answer(media_type, contents))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "dashboard file {:?} (the page lives at /dashboard)",
                name.chars().take(64).collect::<String>()
            ))
        })
}

fn answer(media_type: &str, contents: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(media_type)
        .insert_header(("content-security-policy", CONTENT_SECURITY_POLICY))
        .insert_header(("x-frame-options", "DENY"))
        .insert_header(("referrer-policy", "no-referrer"))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("cross-origin-opener-policy", "same-origin"))
        .insert_header(("cross-origin-resource-policy", "same-origin"))
        .insert_header((
            "permissions-policy",
            "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        ))
        // Small files, replaced with every release: always revalidate.
        .insert_header(("cache-control", "no-cache"))
        .body(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        let served: Vec<&str> = ASSETS.iter().map(|(name, _, _)| *name).collect();
        let mut sources: Vec<&str> = ASSETS.iter().map(|(_, _, text)| *text).collect();
        sources.push(dashboard_file!("index.html"));
        for source in sources {
            for quote in ["'./", "\"./", "\"/dashboard/"] {
                for piece in source.split(quote).skip(1) {
                    let name: String = piece
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
                        .collect();
                    if name.ends_with(".js") || name.ends_with(".css") || name.ends_with(".svg") {
                        assert!(served.contains(&name.as_str()), "{name} is not embedded");
                    }
                }
            }
        }
    }

    #[test]
    fn no_inline_script_style_or_html_sinks() {
        let page = dashboard_file!("index.html");
        assert!(!page.contains("<script>"), "inline script");
        assert!(!page.contains("style="), "inline style");
        let handler = page.split(" on").skip(1).any(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(!handler, "inline event handler attribute");
        for (name, _, text) in ASSETS {
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "localStorage",
            ] {
                assert!(!text.contains(sink), "{name} uses {sink}");
            }
        }
    }
}
