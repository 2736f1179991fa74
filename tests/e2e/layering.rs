//! The dependency edges that ARCHITECTURE.md forbids, checked on the real
//! workspace with `cargo metadata`.

use std::collections::{BTreeMap, BTreeSet};

use baton_tests::{cargo, repo_root};

/// Each workspace package and the names of its direct dependencies (all
/// kinds: normal, dev, build).
fn dependency_edges() -> BTreeMap<String, BTreeSet<String>> {
    let output = cargo()
        .current_dir(repo_root())
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            let deps = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect();
            (package["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

fn forbidden_edges(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let workspace: BTreeSet<&str> = edges.keys().map(String::as_str).collect();
    let mut broken = Vec::new();
    for (package, deps) in edges {
        for dep in deps {
            let rule = match (package.as_str(), dep.as_str()) {
                ("baton-proto", d) if workspace.contains(d) => {
                    "baton-proto depends on no other workspace crate"
                }
                ("baton-telemetry", d) if workspace.contains(d) => {
                    "baton-telemetry (the core's and the agent's traces) depends on no other workspace crate"
                }
                ("baton-sdk", d) if workspace.contains(d) => {
                    "baton-sdk (compiled into guests) depends on no other workspace crate"
                }
                ("baton-core", "baton-agent") => "baton-core never depends on baton-agent",
                ("baton-agent" | "baton-sandbox", "baton-core") => {
                    "the agent never depends on baton-core"
                }
                ("baton-web", d) if workspace.contains(d) && d != "baton-proto" => {
                    "the UI reaches the core only through its API (baton-proto types)"
                }
                // The desktop app embeds a core and an agent (it starts them),
                // and talks to them only through the API.
                ("baton-desktop", d)
                    if workspace.contains(d)
                        && !["baton-proto", "baton-core", "baton-agent"].contains(&d) =>
                {
                    "the desktop app only starts the core and agent and reaches them through the API"
                }
                (p, "wasmtime" | "wasmtime-wasi") if p != "baton-sandbox" => {
                    "only baton-sandbox links wasmtime"
                }
                (p, "sqlx") if p != "baton-core" => "sqlx is used only under baton-core",
                _ => continue,
            };
            broken.push(format!("{package} -> {dep}: {rule}"));
        }
    }
    broken
}

#[test]
fn the_workspace_has_no_forbidden_dependency_edge() {
    let edges = dependency_edges();
    for expected in [
        "baton-proto",
        "baton-core",
        "baton-agent",
        "baton-sandbox",
        "baton-sdk",
        "baton",
        "baton-web",
        "baton-desktop",
    ] {
        assert!(edges.contains_key(expected), "{expected} is missing from the workspace");
    }
    assert_eq!(forbidden_edges(&edges), Vec::<String>::new());
}

#[test]
fn the_check_catches_each_kind_of_forbidden_edge() {
    let mut edges = dependency_edges();
    let mut add = |from: &str, to: &str| {
        edges.entry(from.to_owned()).or_default().insert(to.to_owned());
    };
    add("baton-proto", "baton-sdk");
    add("baton-core", "baton-agent");
    add("baton-agent", "baton-core");
    add("baton", "wasmtime");
    add("baton-web", "baton-core");
    add("baton-desktop", "baton-sandbox");
    add("baton-agent", "sqlx");
    assert_eq!(forbidden_edges(&edges).len(), 7, "{:#?}", forbidden_edges(&edges));
}

/// Each execution backend's module and the other backends it names.
fn backend_imports(sources: &BTreeMap<String, String>) -> Vec<String> {
    let mut broken = Vec::new();
    for (module, source) in sources {
        for other in sources.keys().filter(|other| *other != module) {
            for path in [format!("super::{other}"), format!("backend::{other}")] {
                if source.contains(&path) {
                    broken.push(format!("backend {module} names {path}"));
                }
            }
        }
    }
    broken
}

/// The agent's backend modules: `agent/src/backend/*.rs` but `mod.rs`,
/// and each directory there with all its files.
fn backend_sources() -> BTreeMap<String, String> {
    let dir = repo_root().join("agent/src/backend");
    let mut sources = BTreeMap::new();
    for path in std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()) {
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            let mut source = String::new();
            for file in std::fs::read_dir(&path).unwrap() {
                source += &std::fs::read_to_string(file.unwrap().path()).unwrap();
            }
            sources.insert(module, source);
        } else if path.extension().is_some_and(|e| e == "rs") && module != "mod" {
            sources.insert(module, std::fs::read_to_string(&path).unwrap());
        }
    }
    sources
}

#[test]
fn no_execution_backend_imports_another() {
    let mut sources = backend_sources();
    for expected in ["wasm", "process", "container", "kubernetes"] {
        assert!(sources.contains_key(expected), "no backend module {expected}");
    }
    assert_eq!(backend_imports(&sources), Vec::<String>::new());
    // The check sees an import when there is one.
    sources.insert("process".to_owned(), "use super::wasm::Wasm;".to_owned());
    assert_eq!(backend_imports(&sources), ["backend process names super::wasm"]);
}

/// Modules the Python SDK may import: the standard library's that it
/// uses, and (in `_component.py` only, built into a component) the
/// bindings componentize-py generates.
const PYTHON_SDK_IMPORTS: [&str; 17] = [
    "__future__",
    "collections",
    "dataclasses",
    "datetime",
    "enum",
    "functools",
    "inspect",
    "json",
    "linecache",
    "logging",
    "os",
    "re",
    "sys",
    "time",
    "traceback",
    "types",
    "typing",
];
const PYTHON_BINDINGS: [&str; 2] = ["wit_world", "componentize_py_types"];

/// Each Python SDK file's imports that its layer does not allow.
fn python_sdk_imports(sources: &BTreeMap<String, String>) -> Vec<String> {
    let mut broken = Vec::new();
    for (file, source) in sources {
        let mut in_docstring = false;
        for line in source.lines().map(str::trim) {
            // Examples in docstrings import what a flow would.
            if line.matches("\"\"\"").count() % 2 == 1 {
                in_docstring = !in_docstring;
                continue;
            }
            if in_docstring {
                continue;
            }
            let module = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["import", module, ..] | ["from", module, "import", ..] => module.to_string(),
                _ => continue,
            };
            let top = module.split('.').next().unwrap_or_default();
            let allowed = module.starts_with('.')
                || PYTHON_SDK_IMPORTS.contains(&top)
                || (file == "_component.py" && PYTHON_BINDINGS.contains(&top));
            if !allowed {
                broken.push(format!("{file} imports {module}"));
            }
        }
    }
    broken
}

#[test]
fn the_python_sdk_needs_only_the_standard_library_and_the_cli_carries_all_of_it() {
    let dir = repo_root().join("sdk/python/baton");
    let mut sources = BTreeMap::new();
    for path in std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()) {
        if path.extension().is_some_and(|e| e == "py") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            sources.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    assert!(sources.len() >= 6, "{:?}", sources.keys());
    assert_eq!(python_sdk_imports(&sources), Vec::<String>::new());
    // `baton flow build` writes the SDK from its own copy: every file.
    let build = std::fs::read_to_string(repo_root().join("cli/src/build/python.rs")).unwrap();
    for file in sources.keys() {
        let carried = format!("(\"{file}\", include_str!(\"../../../sdk/python/baton/{file}\"))");
        assert!(build.contains(&carried), "cli/src/build/python.rs does not carry {file}");
    }
    // The check sees a forbidden import when there is one.
    sources
        .insert("_task.py".to_owned(), "import wit_world\nfrom requests import get\n".to_owned());
    assert_eq!(
        python_sdk_imports(&sources),
        ["_task.py imports wit_world", "_task.py imports requests"]
    );
}
