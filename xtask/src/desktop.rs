//! What building the desktop app needs: Tauri's Debian packages, the web UI
//! (its window shows it) and the example flows it deploys on first start
//! (copied to `desktop/flows/`, which its `build.rs` embeds; rewritten only
//! when they change).

use std::path::Path;

use super::{apt_install, run, write_if_changed};

/// Debian packages Tauri (WebKitGTK) builds and runs with, and what the
/// desktop test uses: a virtual display, a screenshot tool, OCR.
pub const PACKAGES: [&str; 11] = [
    "libwebkit2gtk-4.1-dev",
    "build-essential",
    "libxdo-dev",
    "libssl-dev",
    "libayatana-appindicator3-dev",
    "librsvg2-dev",
    "pkg-config",
    "xvfb",
    "xauth",
    "imagemagick",
    "tesseract-ocr",
];

pub fn prepare(root: &Path) -> anyhow::Result<()> {
    apt_install("building the desktop app (Tauri)", &PACKAGES)?;
    super::ui::build(root)?;
    run(
        root,
        "cargo",
        &["build", "--release", "--target", "wasm32-wasip2", "-p", "hello", "-p", "etl"],
    )?;
    let built = baton_tests::target_dir().join("wasm32-wasip2/release");
    let flows = root.join("desktop/flows");
    std::fs::create_dir_all(&flows)?;
    for name in ["hello", "etl"] {
        let file = format!("{name}.wasm");
        write_if_changed(&flows.join(&file), &std::fs::read(built.join(&file))?)?;
    }
    Ok(())
}

/// `cargo xtask desktop`: prepares, then runs the app (arguments after
/// `desktop` go to it).
pub fn start(root: &Path) -> anyhow::Result<()> {
    prepare(root)?;
    let mut args = vec!["run", "--release", "-p", "baton-desktop", "--"];
    let extra: Vec<String> = std::env::args().skip(2).collect();
    args.extend(extra.iter().map(String::as_str));
    run(root, "cargo", &args)
}
