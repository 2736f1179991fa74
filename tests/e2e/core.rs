//! A real core (`baton server start`) driven through the CLI as a user
//! would: deploy a baton.yaml with two deployments, create runs with good
//! and bad parameters, list, inspect, cancel; on SQLite and PostgreSQL.

use std::path::Path;

use baton_tests::{CoreProcess, finish, flow_wasm, fresh_postgres_database};

fn write_project(dir: &Path) -> std::path::PathBuf {
    let component = dir.join("hello.wasm");
    std::fs::write(&component, flow_wasm("hello")).unwrap();
    let file = dir.join("baton.yaml");
    std::fs::write(
        &file,
        "name: demo
build:
  component: hello.wasm
deployments:
  - name: default
    parameters: {a: 1}
    tags: [demo]
  - name: limited
    concurrency_limit: 1
    concurrency_policy: enqueue
    description: one at a time
",
    )
    .unwrap();
    file
}

fn deploy_run_list_cancel(core: &CoreProcess) {
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    let file = write_project(project.path());
    let deployed = finish(core.baton(home.path()).args(["deploy", "--file"]).arg(&file));
    assert_eq!(deployed.status, Some(0), "{}", deployed.stderr);
    assert!(deployed.stdout.contains("created hello/default"), "{}", deployed.stdout);
    assert!(deployed.stdout.contains("created hello/limited"), "{}", deployed.stdout);
    let again = finish(core.baton(home.path()).args(["deploy", "--file"]).arg(&file));
    assert!(again.stdout.contains("unchanged hello/default"), "{}", again.stdout);

    let listed = finish(core.baton(home.path()).args(["deployment", "ls", "--json"]));
    let deployments: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let names: Vec<(String, String)> = deployments
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["flow"].as_str().unwrap().to_owned(), d["name"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        names,
        [("hello".to_owned(), "default".to_owned()), ("hello".to_owned(), "limited".to_owned())]
    );

    let created = finish(core.baton(home.path()).args([
        "deployment",
        "run",
        "hello/default",
        "--param",
        "b=2",
    ]));
    assert_eq!(created.status, Some(0), "{}", created.stderr);
    let id = created.stdout.lines().last().unwrap().to_owned();

    let refused = finish(core.baton(home.path()).args([
        "deployment",
        "run",
        "hello/default",
        "--param",
        "b=two",
    ]));
    assert_ne!(refused.status, Some(0));
    assert!(refused.stderr.contains("parameter `b`"), "{}", refused.stderr);
    let missing = finish(core.baton(home.path()).args([
        "deployment",
        "run",
        "hello/limited",
        "--param",
        "a=1",
    ]));
    assert_ne!(missing.status, Some(0));
    assert!(missing.stderr.contains("parameter `b`"), "{}", missing.stderr);

    let inspected = finish(core.baton(home.path()).args(["run", "inspect", &id, "--json"]));
    let run: serde_json::Value = serde_json::from_str(&inspected.stdout).unwrap();
    assert_eq!(run["id"], id.as_str());
    assert_eq!(run["state"], "SCHEDULED");
    assert_eq!(run["parameters"], serde_json::json!({"a": 1, "b": 2}));

    let cancelled = finish(core.baton(home.path()).args(["run", "cancel", &id]));
    assert_eq!(cancelled.status, Some(0), "{}", cancelled.stderr);
    let runs = finish(core.baton(home.path()).args(["run", "ls", "--json"]));
    let runs: serde_json::Value = serde_json::from_str(&runs.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["state"], "CANCELLED");
    let twice = finish(core.baton(home.path()).args(["run", "cancel", &id]));
    assert_ne!(twice.status, Some(0));
    assert!(twice.stderr.contains("already ended"), "{}", twice.stderr);
}

#[test]
fn a_project_deploys_and_its_runs_are_managed_on_sqlite() {
    deploy_run_list_cancel(&CoreProcess::start(None));
}

#[test]
fn a_project_deploys_and_its_runs_are_managed_on_postgres() {
    deploy_run_list_cancel(&CoreProcess::start(Some(&fresh_postgres_database())));
}

#[test]
fn malformed_project_files_are_refused_with_file_line_and_column() {
    let core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // (file contents, where and what, hint)
    let cases = [
        (
            "deployments:\n  - name: default\n    tagz: [a]\n",
            "baton.yaml:3:5: deployments[0]: unknown field `tagz`",
            "did you mean `tags`?",
        ),
        (
            "deployments:\n  - name: default\n    retries: many\n",
            "baton.yaml:3:14: deployments[0].retries: invalid type",
            "expected u32",
        ),
        (
            "deployments:\n  - name: default\n    concurrency_policy: cancel_new\n",
            "baton.yaml:3:25: deployments[0].concurrency_policy: unknown variant `cancel_new`",
            "did you mean `cancel-new`?",
        ),
        (
            "deployments:\n  - name: 'unterminated\n",
            "baton.yaml:3:1: found unexpected end of stream",
            "while scanning a quoted scalar",
        ),
        (
            "bild:\n  crate: .\ndeployments:\n  - name: a\n",
            "baton.yaml:1:1: unknown field `bild`",
            "did you mean `build`?",
        ),
    ];
    for (text, located, hint) in cases {
        let file = dir.path().join("baton.yaml");
        std::fs::write(&file, text).unwrap();
        let finished = finish(core.baton(home.path()).args(["deploy", "--file"]).arg(&file));
        assert_eq!(finished.status, Some(2), "{text}: {}", finished.stderr);
        assert!(finished.stderr.contains(located), "{text}: {}", finished.stderr);
        assert!(finished.stderr.contains(hint), "{text}: {}", finished.stderr);
        assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    }
    let listed = finish(core.baton(home.path()).args(["deployment", "ls", "--json"]));
    assert_eq!(listed.stdout.trim(), "[]", "nothing was deployed");
}

#[test]
fn init_writes_a_project_that_deploys_as_it_is() {
    let core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("greeter");
    let init = finish(core.baton(home.path()).arg("init").arg(&project));
    assert_eq!(init.status, Some(0), "{}", init.stderr);
    // Same dependency versions and build directory as the workspace.
    std::fs::copy(baton_tests::repo_root().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let deployed = finish(
        core.baton(home.path())
            .env("CARGO_TARGET_DIR", baton_tests::target_dir())
            .current_dir(&project)
            .arg("deploy"),
    );
    assert_eq!(deployed.status, Some(0), "{}", deployed.stderr);
    assert!(deployed.stdout.contains("created greeter/default"), "{}", deployed.stdout);
    let again = finish(core.baton(home.path()).arg("init").arg(&project));
    assert_eq!(again.status, Some(2));
    assert!(again.stderr.contains("already has baton.yaml"), "{}", again.stderr);
}

#[test]
fn the_cli_says_when_no_core_answers() {
    let home = tempfile::tempdir().unwrap();
    let finished = finish(
        baton_tests::baton(home.path())
            .env("BATON_API_URL", "http://127.0.0.1:9")
            .args(["deployment", "ls"]),
    );
    assert_eq!(finished.status, Some(2));
    assert!(
        finished.stderr.contains("cannot reach the core at http://127.0.0.1:9"),
        "{}",
        finished.stderr
    );
}

/// The CLI makes API tokens with scopes; a core with `--api-token` gives a
/// secret's value to an admin token only, and a revoked token is refused.
#[test]
fn api_tokens_with_scopes_guard_secrets() {
    let core = CoreProcess::start_with(None, &["--api-token", "adm1n-t0ken"]);
    let home = tempfile::tempdir().unwrap();
    let as_token = |token: Option<&str>, args: &[&str]| {
        let mut command = core.baton(home.path());
        if let Some(token) = token {
            command.env("BATON_API_TOKEN", token);
        }
        finish(command.args(args))
    };
    let admin = Some("adm1n-t0ken");
    let set = as_token(admin, &["secret", "set", "db-password", "hunter2-s3cr3t"]);
    assert_eq!(set.status, Some(0), "{}", set.stderr);
    let made = as_token(admin, &["api-token", "create", "--scope", "read", "--name", "dashboards"]);
    assert_eq!(made.status, Some(0), "{}", made.stderr);
    let read = made.stdout.lines().last().unwrap().to_owned();
    assert!(read.starts_with("baton-api."), "{}", made.stdout);

    for (token, what) in [(None, "no token"), (Some(read.as_str()), "a read token")] {
        let got = as_token(token, &["secret", "get", "db-password"]);
        assert_ne!(got.status, Some(0), "{what} read the secret: {}", got.stdout);
        assert!(!got.stdout.contains("hunter2") && !got.stderr.contains("hunter2"), "{what}");
    }
    let listed = as_token(Some(&read), &["run", "ls"]);
    assert_eq!(listed.status, Some(0), "a read token lists runs: {}", listed.stderr);
    let got = as_token(admin, &["secret", "get", "db-password"]);
    assert_eq!(got.stdout.trim(), "hunter2-s3cr3t", "{}", got.stderr);

    let tokens = as_token(admin, &["api-token", "ls", "--json"]);
    let tokens: serde_json::Value = serde_json::from_str(&tokens.stdout).unwrap();
    assert_eq!(tokens[0]["scope"], "read", "{tokens}");
    assert!(!tokens.to_string().contains(read.rsplit('.').next().unwrap()), "{tokens}");
    let id = tokens[0]["id"].as_str().unwrap();
    let revoked = as_token(admin, &["api-token", "revoke", id]);
    assert_eq!(revoked.status, Some(0), "{}", revoked.stderr);
    let refused = as_token(Some(&read), &["run", "ls"]);
    assert_ne!(refused.status, Some(0), "a revoked token still works");
}

#[test]
fn pools_are_created_with_a_type_and_show_their_job_variables() {
    let core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    core.ok(home.path(), &["pool", "create", "big", "--type", "container"]);
    let inspected: serde_json::Value =
        serde_json::from_str(&core.ok(home.path(), &["pool", "inspect", "big", "--json"])).unwrap();
    assert_eq!(inspected["type"], "container");
    let image = &inspected["base_job_template"]["variables"]["properties"]["image"];
    assert_eq!(image["type"], "string", "{inspected:#}");
    let text = core.ok(home.path(), &["pool", "inspect", "big"]);
    assert!(text.contains("TYPE") && text.contains("container"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("network_mode") && l.contains("\"none\"")),
        "{text}"
    );
    // A template of one's own, checked by the core.
    let file = home.path().join("template.json");
    std::fs::write(&file, r#"{"image": "acme/flows:1"}"#).unwrap();
    let refused = finish(
        core.baton(home.path())
            .args(["pool", "create", "own", "--type", "container", "--base-job-template"])
            .arg(&file),
    );
    assert_ne!(refused.status, Some(0));
    assert!(refused.stderr.contains("needs `variables`"), "{}", refused.stderr);
    // Job variables: the deployment's in baton.yaml, the run's on the
    // command line, each checked against the pool's template.
    let yaml = "    parameters: {a: 1, b: 2}\n    work_pool: {name: big, job_variables: {image: acme/flows:1}}\n";
    core.deploy(home.path(), "hello", "default", yaml);
    let created = core.ok(
        home.path(),
        &["deployment", "run", "hello/default", "--job-var", "memory_mib=1024", "--json"],
    );
    let run: serde_json::Value = serde_json::from_str(&created).unwrap();
    assert_eq!(run["job_variables"], serde_json::json!({"memory_mib": 1024}), "{run:#}");
    let id = run["id"].as_str().unwrap();
    let text = core.ok(home.path(), &["run", "inspect", id]);
    assert!(text.contains(r#"job vars    {"memory_mib":1024}"#), "{text}");
    let bad = finish(core.baton(home.path()).args([
        "deployment",
        "run",
        "hello/default",
        "--job-var",
        "memory_mib=lots",
    ]));
    assert_ne!(bad.status, Some(0));
    assert!(bad.stderr.contains("job variable `memory_mib`"), "{}", bad.stderr);
}
