//! `baton flow build|inspect|run` on the example flows, the hostile test
//! flows, files that are not flows, and a flow written from the README.

use std::path::PathBuf;
use std::sync::OnceLock;

use baton_tests::{assert_snapshot, baton, finish, repo_root};

fn home() -> &'static tempfile::TempDir {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().unwrap())
}

/// Builds a flow crate with `baton flow build`; returns the component path.
fn build(crate_dir: &str) -> PathBuf {
    let built = finish(baton(home().path()).args(["flow", "build", crate_dir]));
    assert_eq!(built.status, Some(0), "{}", built.stderr);
    let path = PathBuf::from(built.stdout.lines().last().unwrap());
    assert!(path.is_file(), "{path:?} is not a file");
    path
}

fn hello() -> &'static PathBuf {
    static HELLO: OnceLock<PathBuf> = OnceLock::new();
    HELLO.get_or_init(|| build("examples/flows/hello"))
}

fn run(component: &PathBuf, args: &[&str]) -> baton_tests::Finished {
    finish(baton(home().path()).args(["flow", "run"]).arg(component).args(args))
}

#[test]
fn build_prints_the_component_path_last() {
    let path = hello();
    assert_eq!(path.file_name().unwrap(), "hello.wasm");
    assert_eq!(&std::fs::read(path).unwrap()[..4], b"\0asm");
}

#[test]
fn hello_adds_its_parameters() {
    let finished = run(hello(), &["--param", "a=2", "--param", "b=3"]);
    assert_eq!(finished.status, Some(0), "{}", finished.stderr);
    assert_eq!(finished.stdout, "5\n");
    assert!(finished.stderr.contains("INFO  adding 2 and 3"), "{}", finished.stderr);
}

#[test]
fn params_json_and_params_combine() {
    let finished = run(hello(), &["--params-json", r#"{"a": 40, "b": 1}"#, "--param", "b=2"]);
    assert_eq!(finished.status, Some(0), "{}", finished.stderr);
    assert_eq!(finished.stdout, "42\n");
    // Parameters too large for a command line come from a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("params.json");
    std::fs::write(&file, r#"{"a": 30, "b": 3}"#).unwrap();
    let finished = run(hello(), &["--params-file", file.to_str().unwrap(), "--param", "b=4"]);
    assert_eq!(finished.status, Some(0), "{}", finished.stderr);
    assert_eq!(finished.stdout, "34\n");
}

#[test]
fn inspect_prints_name_version_and_schema() {
    let finished =
        finish(baton(home().path()).args(["flow", "inspect"]).arg(hello()).arg("--json"));
    assert_eq!(finished.status, Some(0), "{}", finished.stderr);
    let info: serde_json::Value = serde_json::from_str(&finished.stdout).unwrap();
    assert_eq!(info["name"], "hello");
    assert_eq!(info["version"], "0.1.0");
    assert_eq!(info["parameters"]["properties"]["b"]["type"], "integer");
    assert!(info["digest"].as_str().unwrap().starts_with("sha256:"));

    let text = finish(baton(home().path()).args(["flow", "inspect"]).arg(hello()));
    assert_eq!(text.status, Some(0));
    let digest = info["digest"].as_str().unwrap();
    assert_snapshot("flow_inspect_hello", &text.stdout.replace(digest, "sha256:<digest>"));
}

#[test]
fn parameters_that_break_the_schema_are_refused_naming_the_field() {
    let finished = run(hello(), &["--param", "a=two", "--param", "b=3"]);
    assert_eq!(finished.status, Some(2));
    assert_eq!(finished.stdout, "");
    assert!(finished.stderr.contains("parameter `a`"), "{}", finished.stderr);
    assert!(finished.stderr.contains("integer"), "{}", finished.stderr);

    let missing = run(hello(), &["--param", "a=1"]);
    assert_eq!(missing.status, Some(2));
    assert!(missing.stderr.contains("parameter `b`"), "{}", missing.stderr);
}

#[test]
fn files_that_are_not_flows_get_one_line_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let hello_bytes = std::fs::read(hello()).unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("script.wasm", b"#!/bin/sh\n".to_vec(), "not a WebAssembly file"),
        ("truncated.wasm", hello_bytes[..hello_bytes.len() / 3].to_vec(), "truncated or corrupt"),
        ("module.wasm", b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module, not a component"),
        ("other.wasm", b"\0asm\x0d\0\x01\0".to_vec(), "not a Baton flow"),
    ];
    let mut messages = String::new();
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        for command in ["run", "inspect"] {
            let finished = finish(baton(home().path()).args(["flow", command]).arg(&path));
            assert_eq!(finished.status, Some(2), "{name}: {}", finished.stderr);
            assert_eq!(finished.stderr.lines().count(), 1, "{name}: {}", finished.stderr);
            assert!(finished.stderr.starts_with("error: "), "{name}: {}", finished.stderr);
            assert!(finished.stderr.contains(expected), "{name}: {}", finished.stderr);
            if command == "run" {
                // The parser's detail names offsets that vary with the build.
                let message = finished.stderr.replace(dir.path().to_str().unwrap(), "<dir>");
                let message = match message.split_once("component: ") {
                    Some((head, _)) if name == "truncated.wasm" => format!("{head}component: …\n"),
                    _ => message,
                };
                messages.push_str(&message);
            }
        }
    }
    assert_snapshot("bad_components", &messages);
    let missing = finish(baton(home().path()).args(["flow", "run", "no-such.wasm"]));
    assert_eq!(missing.status, Some(2));
    assert!(missing.stderr.contains("reading no-such.wasm"), "{}", missing.stderr);
}

#[test]
fn hostile_flows_end_in_their_named_outcome_and_status() {
    let cases = [
        ("tests/flows/loop-forever", 4, "timed out after 1s"),
        ("tests/flows/memory-hog", 5, "ran out of memory"),
        ("tests/flows/panics", 3, "this flow panics on purpose"),
        ("tests/flows/returns-error", 1, "the warehouse is closed"),
        ("tests/flows/read-passwd", 1, "reading /etc/passwd"),
        ("tests/flows/open-socket", 1, "connecting to 127.0.0.1"),
    ];
    for (crate_dir, status, message) in cases {
        let component = build(crate_dir);
        let finished = run(&component, &["--timeout", "1s", "--memory", "64MiB"]);
        assert_eq!(finished.status, Some(status), "{crate_dir}: {}", finished.stderr);
        assert_eq!(finished.stdout, "", "{crate_dir}");
        assert!(finished.stderr.contains(message), "{crate_dir}: {}", finished.stderr);
    }
}

#[test]
fn etl_retries_its_flaky_task_and_shows_tasks_and_progress() {
    let etl = build("examples/flows/etl");
    let finished = run(&etl, &["--param", "count=3"]);
    assert_eq!(finished.status, Some(0), "{}", finished.stderr);
    let output: serde_json::Value = serde_json::from_str(&finished.stdout).unwrap();
    assert_eq!(output["loaded"], 3);
    for line in [
        "TASK  transform failed after",
        "TASK  transform started (attempt 2/3)",
        "INFO  [extract] extracted 3 readings",
        "PROG  100% done",
    ] {
        assert!(finished.stderr.contains(line), "{line:?} missing from:\n{}", finished.stderr);
    }
}

#[test]
fn granted_variables_and_secrets_reach_the_flow_and_secrets_stay_out_of_logs() {
    let grants = build("tests/flows/grants");
    let finished = run(&grants, &["--var", "region=eu-west", "--secret", "token=s3cr3t-value"]);
    assert_eq!(finished.status, Some(0), "{}", finished.stderr);
    let output: serde_json::Value = serde_json::from_str(&finished.stdout).unwrap();
    assert_eq!(output["region"], "eu-west");
    assert_eq!(output["token_length"], 12);
    assert!(output["ungranted"].as_str().unwrap().contains("not granted"), "{output}");
    assert!(finished.stderr.contains("using token ***"), "{}", finished.stderr);
    assert!(!finished.stderr.contains("s3cr3t-value"), "{}", finished.stderr);

    let without = run(&grants, &[]);
    assert_eq!(without.status, Some(1));
    assert!(without.stderr.contains("variable `region` is not granted"), "{}", without.stderr);
}

/// The first fenced block of `language` after the line `after` in the README.
fn readme_block(after: &str, language: &str) -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let rest = &readme[readme.find(after).unwrap_or_else(|| panic!("README lacks {after:?}"))..];
    let fence = format!("```{language}\n");
    let body = &rest[rest.find(&fence).unwrap() + fence.len()..];
    body[..body.find("```").unwrap()].to_owned()
}

#[test]
fn the_flow_written_in_the_readme_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("greet");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    let sdk = repo_root().join("sdk/rust");
    let manifest = readme_block("`Cargo.toml`:", "toml")
        .replace("/path/to/baton/sdk/rust", sdk.to_str().unwrap());
    std::fs::write(crate_dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(crate_dir.join("src/lib.rs"), readme_block("`src/lib.rs`:", "rust")).unwrap();
    // Same dependency versions and build directory as the workspace, so
    // nothing is compiled twice.
    std::fs::copy(repo_root().join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    let built = finish(
        baton(home().path())
            .env("CARGO_TARGET_DIR", baton_tests::target_dir())
            .args(["flow", "build"])
            .arg(&crate_dir),
    );
    assert_eq!(built.status, Some(0), "{}", built.stderr);
    let component = PathBuf::from(built.stdout.lines().last().unwrap());

    let finished = run(&component, &["--param", "name=007", "--param", "times=2"]);
    assert_eq!(finished.status, Some(0), "{}", finished.stderr);
    let output: serde_json::Value = serde_json::from_str(&finished.stdout).unwrap();
    assert_eq!(output, serde_json::json!(["hello, 007", "hello, 007"]));
    assert!(finished.stderr.contains("INFO  greeting 007"), "{}", finished.stderr);
    assert!(finished.stderr.contains("TASK  compose completed"), "{}", finished.stderr);

    let info = finish(baton(home().path()).args(["flow", "inspect", "--json"]).arg(&component));
    let info: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(info["name"], "greet");
    assert_eq!(info["description"], "Greets people");
    assert_eq!(info["parameters"]["required"], serde_json::json!(["name"]));
}

#[test]
fn run_help_documents_every_exit_status() {
    let help = finish(baton(home().path()).args(["flow", "run", "--help"]));
    assert_eq!(help.status, Some(0));
    assert_snapshot("flow_run_help", &help.stdout);
}

#[test]
fn build_refuses_a_directory_without_a_crate() {
    let dir = tempfile::tempdir().unwrap();
    let finished = finish(baton(home().path()).args(["flow", "build"]).arg(dir.path()));
    assert_eq!(finished.status, Some(2));
    assert!(finished.stderr.contains("has no Cargo.toml"), "{}", finished.stderr);
}
