//! For the host, embeds the built UI (`web/dist`, written by `cargo xtask ui`)
//! with a gzip copy of each file, so the core serves it from memory. For
//! wasm32 (the app itself) there is nothing to do.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        return;
    }
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let dist = manifest.join("dist");
    // Only the bundle matters (`cargo xtask ui` rewrites only files that
    // changed, so an unchanged UI rebuilds nothing); without one, watch the
    // crate for it to appear.
    if dist.is_dir() {
        println!("cargo:rerun-if-changed=dist");
    } else {
        println!("cargo:rerun-if-changed=.");
    }
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        collect(&dist, &dist, &mut files);
    } else {
        println!(
            "cargo:warning=the web UI is not built (no web/dist/index.html): the core will serve a \
             page saying so; `cargo xtask ui` builds it"
        );
    }
    files.sort();
    let mut code = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (index, (name, path)) in files.iter().enumerate() {
        let body = std::fs::read(path).unwrap_or_default();
        let gzip = out.join(format!("asset{index}.gz"));
        write_gzip(&gzip, &body);
        let _ = writeln!(
            code,
            "    Asset {{ path: {name:?}, content_type: {:?}, body: include_bytes!({:?}), \
             gzip: include_bytes!({:?}), etag: \"\\\"{:016x}\\\"\" }},",
            content_type(name),
            path.display().to_string(),
            gzip.display().to_string(),
            fnv(&body),
        );
    }
    code.push_str("];\n");
    if let Err(error) = std::fs::write(out.join("assets.rs"), code) {
        println!("cargo:warning=writing the asset table failed: {error}");
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            files.push((relative.to_string_lossy().replace('\\', "/"), path));
        }
    }
}

fn write_gzip(to: &Path, body: &[u8]) {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let compressed = encoder.write_all(body).and_then(|()| encoder.finish()).unwrap_or_default();
    if let Err(error) = std::fs::write(to, compressed) {
        println!("cargo:warning=writing {} failed: {error}", to.display());
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// A content hash for the `ETag` (FNV-1a: stable, and no dependency).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
