//! Schemathesis (PyPI, installed by `cargo xtask setup`) against a live
//! core: every operation of `/api/openapi.json`, with every check it has
//! (no 5xx, answers as documented, schema-valid input taken, invalid input
//! refused, auth enforced, ...). `tests/e2e/schemathesis.toml` lists the
//! few refusals JSON Schema cannot express. `BATON_FUZZ_SEED` picks
//! another seed than the fixed one, to look further.

use std::process::Command;

use baton_tests::http::Connection;
use baton_tests::{CoreProcess, repo_root};
use serde_json::Value;

const TOKEN: &str = "fuzz-admin-token";

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    let st = baton_tests::python_tools().join("bin/st");
    assert!(st.is_file(), "{} is missing: `cargo xtask setup` installs Schemathesis", st.display());
    let core = CoreProcess::start_with(None, &["--api-token", TOKEN]);
    let operations = documented_operations(&core);
    let seed = std::env::var("BATON_FUZZ_SEED").unwrap_or_else(|_| "1".to_owned());
    let finished = baton_tests::finish(
        Command::new(&st)
            .arg("--config-file")
            .arg(repo_root().join("tests/e2e/schemathesis.toml"))
            .arg("--no-color")
            .arg("run")
            .arg(format!("{}/api/openapi.json", core.url))
            .args(["--checks", "all", "--max-examples", "30", "--seed", &seed])
            .args(["--header", &format!("Authorization: Bearer {TOKEN}")]),
    );
    let report = &finished.stdout;
    let summary = report.rsplit("SUMMARY").next().unwrap_or_default();
    println!("{summary}");
    assert_eq!(
        finished.status,
        Some(0),
        "Schemathesis found failures:\n{report}\n{}",
        finished.stderr
    );
    // A run that reached nothing would pass too: every documented
    // operation must have been tested.
    let tested = format!("Tested: {operations}");
    assert!(
        summary.contains(&tested),
        "not every one of {operations} operations was tested:\n{summary}"
    );
}

/// How many operations the core's OpenAPI document has.
fn documented_operations(core: &CoreProcess) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let address = core.api_address();
        let mut connection = Connection::open(address).await;
        let authorization = format!("Bearer {TOKEN}");
        let headers = [("Authorization", authorization.as_str())];
        let (status, body) = connection.call_with("GET", "/api/openapi.json", &headers, b"").await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let document: Value = serde_json::from_slice(&body).unwrap();
        document["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum()
    })
}
