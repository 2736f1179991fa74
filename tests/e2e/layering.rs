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
