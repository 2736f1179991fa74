//! Test flow: writes `bytes` bytes to a file in its scratch directory, reads them back, lists the directory and tries to
//! read outside it; a write the directory's cap refuses fails the run with
//! the error.

use std::io::Write;

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {
    bytes: usize,
}

fn scratch(params: Params) -> Result<baton_sdk::serde_json::Value> {
    let dir = baton_sdk::scratch_dir();
    let path = dir.join("data.bin");
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let chunk = vec![7_u8; 1 << 20];
    let mut left = params.bytes;
    while left > 0 {
        let piece = chunk.get(..left.min(chunk.len())).unwrap_or_default();
        file.write_all(piece).with_context(|| format!("writing {}", path.display()))?;
        left -= piece.len();
    }
    file.flush().with_context(|| format!("writing {}", path.display()))?;
    let back = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(back.len() == params.bytes && back.iter().all(|&b| b == 7), "read back other bytes");
    let mut entries: Vec<String> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    let outside = ["/tmp/../etc/passwd", "/etc/passwd", "../etc/passwd"]
        .map(|path| std::fs::read(path).is_ok());
    Ok(json!({
        "dir": dir.display().to_string(),
        "read_back": back.len(),
        "entries": entries,
        "read_outside": outside.iter().any(|&read| read),
    }))
}

baton_sdk::flow!(scratch);
