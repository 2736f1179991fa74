//! Tauri's build step, and the example flows the embedded core deploys on
//! first start (components `cargo xtask start` or `cargo xtask desktop`
//! built into `desktop/flows/`).

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let flows = manifest.join("flows");
    println!("cargo:rerun-if-changed=flows");
    let mut code = String::from("pub static FLOWS: &[(&str, &[u8])] = &[\n");
    for name in ["hello", "etl"] {
        let path = flows.join(format!("{name}.wasm"));
        if path.is_file() {
            code.push_str(&format!(
                "    ({name:?}, include_bytes!({:?})),\n",
                path.display().to_string()
            ));
        } else {
            println!(
                "cargo:warning=desktop/flows/{name}.wasm is missing: the embedded core will start \
                 without that example (`cargo xtask desktop` builds it)"
            );
        }
    }
    code.push_str("];\n");
    if let Err(error) = std::fs::write(out.join("flows.rs"), code) {
        println!("cargo:warning=writing the flow table failed: {error}");
    }
    tauri_build::build();
}
