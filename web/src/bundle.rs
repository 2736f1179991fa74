//! The built UI, embedded by `build.rs` from `web/dist`.

/// One file of the bundle.
#[derive(Debug)]
pub struct Asset {
    /// Relative to the bundle's root: `index.html`, `baton_web_bg.wasm`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// The same bytes, gzip-compressed.
    pub gzip: &'static [u8],
    /// A quoted content hash.
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Shown when the binary was built without the UI.
static NOT_BUILT: Asset = Asset {
    path: "index.html",
    content_type: "text/html; charset=utf-8",
    body: b"<!doctype html><meta charset=utf-8><title>Baton</title>\
<body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\">\
<h1>Baton</h1><p>This build of Baton does not contain its web UI. Build it with \
<code>cargo xtask ui</code> and rebuild (<code>cargo xtask start</code> does both). \
The REST API is at <a href=\"/api/openapi.json\">/api/openapi.json</a>.</p>",
    gzip: &[],
    etag: "\"not-built\"",
};

/// The file at `path` (no leading `/`), if the bundle has it.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

/// The page every UI route answers with (the app routes in the browser).
pub fn index() -> &'static Asset {
    asset("index.html").unwrap_or(&NOT_BUILT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_its_gzip_copy_and_the_index_is_html() {
        for asset in ASSETS {
            assert!(!asset.gzip.is_empty() || asset.body.is_empty(), "{}", asset.path);
        }
        assert!(index().content_type.starts_with("text/html"));
        assert!(asset("no/such/file").is_none());
    }
}
