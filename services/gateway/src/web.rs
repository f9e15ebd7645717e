//! The web app: plain ES modules and one stylesheet under `web/`, embedded in the binary
//! (`rust-embed`, in debug builds too), served at `/` and under `/assets/<build>/…`, where
//! `<build>` is a hash of every file: assets are cached for a year (`immutable`) and a new build
//! gets new URLs, while `index.html` is revalidated on each load (`no-cache`). Each file is
//! gzipped once at start and sent compressed to clients that accept it.
//!
//! Pages carry a strict Content-Security-Policy: scripts and styles only from this origin (no
//! inline code), no frames, no plugins, Trusted Types required for DOM sinks, and `connect-src`
//! naming this origin and the object store's, which the browser PUTs to and GETs from with the
//! presigned URLs. The public share page (`/s/{token}` with a password) is HTML with no script.

use axum::body::Bytes;
use axum::extract::{Extension, FromRequest, Path, Request};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;

use crate::error::ApiError;

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Files;

/// The page shell every screen renders into.
const INDEX: &str = "index.html";
/// The share page's template (no script).
const SHARE: &str = "share.html";
/// Where the template names the asset directory.
const ASSETS_MARK: &str = "%ASSETS%";

struct Asset {
    content_type: &'static str,
    raw: Bytes,
    gzip: Bytes,
}

impl Asset {
    fn new(name: &str, raw: Vec<u8>) -> Asset {
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing to a Vec cannot fail.
        let _ = z.write_all(&raw);
        let gzip = z.finish().unwrap_or_default();
        Asset {
            content_type: content_type(name),
            raw: raw.into(),
            gzip: gzip.into(),
        }
    }

    /// The bytes for a client, gzipped when it says it accepts gzip.
    fn answer(
        &self,
        request: &HeaderMap,
        status: StatusCode,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Response {
        let gzip = request
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(accepts_gzip));
        let body = if gzip {
            self.gzip.clone()
        } else {
            self.raw.clone()
        };
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if gzip {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        for (name, value) in headers {
            h.insert(name, value);
        }
        res
    }
}

/// One `Accept-Encoding` entry says gzip, and not with `q=0`.
fn accepts_gzip(entry: &str) -> bool {
    accepts(entry, "gzip")
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "webmanifest" => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

/// The embedded app, ready to serve.
pub struct Web {
    build: String,
    index: Asset,
    share_template: String,
    assets: HashMap<String, Asset>,
    app_csp: HeaderValue,
    share_csp: HeaderValue,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web")
            .field("build", &self.build)
            .finish_non_exhaustive()
    }
}

/// The app's policy: this origin for everything, plus the object store for the presigned PUT
/// and GET the browser sends itself.
fn app_csp(store: Option<&str>) -> String {
    let store = store.map(|s| format!(" {s}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{store}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
         object-src 'none'; require-trusted-types-for 'script'; trusted-types 'none'"
    )
}

/// The share page's policy: no script at all; its form posts here and is redirected to the
/// store.
fn share_csp(store: Option<&str>) -> String {
    let store = store.map(|s| format!(" {s}")).unwrap_or_default();
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'{store}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

impl Web {
    /// Loads the embedded files; `store_origin` is the object store's origin as browsers reach
    /// it (`https://s3.example.com`), or none when the gateway does not know it (uploads and
    /// downloads from the browser then fail on the policy, and the gateway says so at start).
    pub fn load(store_origin: Option<&str>) -> anyhow::Result<Web> {
        let mut names: Vec<String> = Files::iter().map(|n| n.into_owned()).collect();
        names.sort();
        let mut hash = Sha256::new();
        let mut files = Vec::new();
        for name in names {
            let Some(file) = Files::get(&name) else {
                continue;
            };
            hash.update((name.len() as u64).to_be_bytes());
            hash.update(name.as_bytes());
            hash.update(file.metadata.sha256_hash());
            files.push((name, file.data.into_owned()));
        }
        let build = coffer_kit::hex::encode(&hash.finalize()[..8]);
        let assets_dir = format!("/assets/{build}");
        let mut assets = HashMap::new();
        let mut index = None;
        let mut share_template = None;
        for (name, data) in files {
            match name.as_str() {
                INDEX => {
                    let text = String::from_utf8(data)?.replace(ASSETS_MARK, &assets_dir);
                    index = Some(Asset::new(&name, text.into_bytes()));
                }
                SHARE => {
                    share_template =
                        Some(String::from_utf8(data)?.replace(ASSETS_MARK, &assets_dir));
                }
                _ => {
                    assets.insert(name.clone(), Asset::new(&name, data));
                }
            }
        }
        let header = |v: String| {
            HeaderValue::from_str(&v)
                .map_err(|_| anyhow::anyhow!("the store origin is not a header value"))
        };
        Ok(Web {
            build,
            index: index.ok_or_else(|| anyhow::anyhow!("the web app has no {INDEX}"))?,
            share_template: share_template
                .ok_or_else(|| anyhow::anyhow!("the web app has no {SHARE}"))?,
            assets,
            app_csp: header(app_csp(store_origin))?,
            share_csp: header(share_csp(store_origin))?,
        })
    }

    /// The hash that names this build's asset directory.
    pub fn build(&self) -> &str {
        &self.build
    }

    fn page_headers(&self, csp: &HeaderValue) -> Vec<(HeaderName, HeaderValue)> {
        vec![
            (header::CONTENT_SECURITY_POLICY, csp.clone()),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ]
    }

    /// The share page with `message` (one of ours, never the client's text) above its form.
    pub fn share_page(&self, status: StatusCode, message: &str, form: ShareForm) -> Response {
        let form_html = match form {
            ShareForm::None => "",
            ShareForm::Button => {
                "<form method=\"post\" class=\"share-form\">\
                 <button type=\"submit\">Download</button></form>"
            }
            ShareForm::Password => {
                "<form method=\"post\" class=\"share-form\">\
                 <label for=\"password\">Password</label>\
                 <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"off\" required autofocus>\
                 <button type=\"submit\">Download</button></form>"
            }
        };
        let html = self
            .share_template
            .replace("%MESSAGE%", &escape(message))
            .replace("%FORM%", form_html);
        let mut res = (status, html).into_response();
        let h = res.headers_mut();
        for (name, value) in self.page_headers(&self.share_csp) {
            h.insert(name, value);
        }
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        // The share's link must not be kept by a cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}

/// HTML text escaping for the share page's message.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Whether a request's body is a form (`application/x-www-form-urlencoded`).
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Whether a request is a browser's navigation (it asks for HTML, and not with `q=0`).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| accepts(t, "text/html")))
}

/// One `Accept`/`Accept-Encoding` entry names `what`, and not with `q=0`.
fn accepts(entry: &str, what: &str) -> bool {
    let mut parts = entry.split(';').map(str::trim);
    parts.next().is_some_and(|e| e.eq_ignore_ascii_case(what))
        && !parts.any(|p| {
            let (key, value) = p.split_once('=').unwrap_or((p, ""));
            key.trim().eq_ignore_ascii_case("q")
                && value.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
        })
}

/// `GET /`: the app's shell.
pub async fn index(Extension(web): Extension<Arc<Web>>, headers: HeaderMap) -> Response {
    web.index
        .answer(&headers, StatusCode::OK, web.page_headers(&web.app_csp))
}

/// `GET /assets/{build}/{*path}`: a file of this build, cached for a year; another build's
/// path is 404 (the client reloads the shell and gets this build's names).
pub async fn asset(
    Extension(web): Extension<Arc<Web>>,
    Path((build, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match web.assets.get(&path) {
        Some(asset) if build == web.build => {
            let mut h = web.page_headers(&web.app_csp);
            h.retain(|(n, _)| n != header::CACHE_CONTROL);
            h.push((
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ));
            asset.answer(&headers, StatusCode::OK, h)
        }
        _ => ApiError::not_found().into_response(),
    }
}

/// What a browser's share page shows under its message.
pub enum ShareForm {
    /// Nothing to do (the link is dead, or locked for now).
    None,
    /// A download button that POSTs.
    Button,
    /// A password field and a download button that POST.
    Password,
}

/// The JSON body of `POST /s/{token}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedeemBody {
    password: Option<String>,
}

/// A share password from the body: `application/x-www-form-urlencoded` (the share page's form)
/// or JSON `{"password": "…"}`.
pub struct SharePassword {
    pub password: String,
}

impl<S: Send + Sync> FromRequest<S> for SharePassword {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let form = is_form(req.headers());
        if !form {
            let crate::body::JsonBody(b) =
                crate::body::JsonBody::<RedeemBody>::from_request(req, state).await?;
            return Ok(SharePassword {
                password: b.password.unwrap_or_default(),
            });
        }
        let bytes: Bytes = crate::body::read_limited(req.into_body(), 4096).await?;
        SharePassword::from_form(&bytes)
    }
}

impl SharePassword {
    /// The share page's form body: one field, `password`, or none.
    pub(crate) fn from_form(bytes: &[u8]) -> Result<Self, ApiError> {
        let mut password = None;
        for (key, value) in url::form_urlencoded::parse(bytes) {
            if key != "password" || password.is_some() {
                return Err(ApiError::invalid("the form takes one field: password"));
            }
            password = Some(value.into_owned());
        }
        Ok(SharePassword {
            password: password.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_and_its_assets_are_embedded_under_one_build_hash() {
        let web = Web::load(Some("https://s3.example.com")).unwrap();
        assert_eq!(web.build().len(), 16);
        let index = std::str::from_utf8(&web.index.raw).unwrap();
        assert!(index.contains(&format!("/assets/{}/", web.build())));
        assert!(!index.contains(ASSETS_MARK));
        // No inline script or style, no third-party origin.
        assert!(!index.contains("<style"));
        assert!(!index.contains(" style="));
        assert!(!index.contains("http://") && !index.contains("https://"));
        for (name, asset) in &web.assets {
            assert!(!asset.gzip.is_empty(), "{name}");
            if name.ends_with(".js") {
                let text = std::str::from_utf8(&asset.raw).unwrap();
                for sink in [
                    "innerHTML",
                    "outerHTML",
                    "insertAdjacentHTML",
                    "document.write",
                    "eval(",
                ] {
                    assert!(
                        !text.contains(sink) || name.starts_with("vendor/"),
                        "{name} uses {sink}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_policies_name_the_store_and_forbid_framing_and_inline_code() {
        let app = app_csp(Some("https://s3.example.com"));
        assert!(app.contains("default-src 'self'"));
        assert!(app.contains("connect-src 'self' https://s3.example.com;"));
        assert!(app.contains("frame-ancestors 'none'"));
        assert!(!app.contains("unsafe"));
        let share = share_csp(None);
        assert!(share.contains("default-src 'none'") && !share.contains("script-src"));
    }

    /// cargo-deny's rule for crates, held for the npm code the app ships: each vendored package
    /// has an allowed licence with its text beside it, and each file is the one recorded.
    #[test]
    fn vendored_web_code_has_an_allowed_licence_and_the_recorded_bytes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join("web-vendor.json")).unwrap()).unwrap();
        let deny = std::fs::read_to_string(root.join("../../deny.toml")).unwrap();
        let allowed: Vec<&str> = deny
            .split("allow = [")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .unwrap()
            .split(',')
            .map(|l| l.trim().trim_matches('"'))
            .filter(|l| !l.is_empty())
            .collect();
        let mut listed = Vec::new();
        for package in manifest["packages"].as_array().unwrap() {
            let license = package["license"].as_str().unwrap();
            assert!(
                allowed.contains(&license),
                "{license} is not in deny.toml's allow list"
            );
            let text =
                std::fs::read_to_string(root.join(package["license_file"].as_str().unwrap()))
                    .unwrap();
            assert!(
                text.contains(&format!("The {license} License")),
                "licence text"
            );
            for (path, file) in package["files"].as_object().unwrap() {
                let bytes = std::fs::read(root.join(path)).unwrap();
                assert_eq!(
                    coffer_kit::hex::encode(&Sha256::digest(&bytes)),
                    file["sha256"].as_str().unwrap(),
                    "{path} differs from the vendored release"
                );
                listed.push(path.trim_start_matches("web/").to_owned());
            }
        }
        // Every vendored script the app serves is listed.
        for name in Files::iter() {
            if name.starts_with("vendor/") && name.ends_with("js") {
                assert!(
                    listed.contains(&name.to_string()),
                    "{name} is not in web-vendor.json"
                );
            }
        }
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        for (entry, yes) in [
            ("gzip", true),
            (" gzip;q=0.5", true),
            ("GZIP", true),
            ("gzip;q=0", false),
            ("gzip; q=0.0", false),
            ("gzip;Q=0", false),
            ("gzip; q = 0", false),
            ("x-gzip", false),
            ("br", false),
        ] {
            assert_eq!(accepts_gzip(entry), yes, "{entry}");
        }
    }

    #[test]
    fn html_is_wanted_only_when_asked_for() {
        let with = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            wants_html(&h)
        };
        assert!(with("text/html,application/xhtml+xml,*/*;q=0.8"));
        assert!(!with("*/*"));
        assert!(!with("application/json"));
        assert!(!with("text/html;q=0, */*"));
        assert!(!wants_html(&HeaderMap::new()));
    }

    #[test]
    fn the_share_message_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
