//! What a new user coming from Prefect tripped over, each as the CLI shows
//! it: a misspelt parameter or deployment, retrying a run, planned runs
//! burying history, a listing cut short by `head`, a deploy that half
//! applied, a paused deployment that silently took a run.

use std::time::Duration;

use baton_tests::{System, finish};
use serde_json::{Value, json};

use crate::agents::{inspect, wait_for};

#[test]
fn misspellings_are_named_a_run_is_retried_and_planned_runs_list_apart() {
    let system = System::start(2);
    let (core, home) = (&system.core, system.home.path());
    core.deploy(home, "hello", "default", "");

    // A parameter the flow does not take, and a deployment that does not
    // exist, are refused with the names nearest to them.
    let misspelt = finish(core.baton(home).args([
        "deployment",
        "run",
        "hello/default",
        "--param",
        "a=1",
        "--param",
        "bb=2",
    ]));
    assert_ne!(misspelt.status, Some(0));
    assert!(
        misspelt.stderr.contains("`bb`: no such parameter; did you mean `b`?"),
        "{}",
        misspelt.stderr
    );
    let unknown = finish(core.baton(home).args(["deployment", "run", "hello/defualt"]));
    assert_ne!(unknown.status, Some(0));
    assert!(unknown.stderr.contains("did you mean `hello/default`?"), "{}", unknown.stderr);
    assert!(system.runs("hello/default").is_empty(), "a refused run was created");

    // A run retried: a new run, linked to it, printed last.
    let id = crate::agents::run(core, home, "hello/default", &["a=1", "b=2"]);
    wait_for(core, home, &id, "COMPLETED", Duration::from_secs(30));
    let retried = system.ok(&["run", "retry", &id]);
    let retry = retried.lines().last().unwrap().to_owned();
    assert_ne!(retry, id);
    let (done, _) = wait_for(core, home, &retry, "COMPLETED", Duration::from_secs(30));
    assert_eq!(done["retry_of"], id.as_str(), "{done:#}");
    assert_eq!(done["output"], 3);
    assert!(system.ok(&["run", "inspect", &retry]).contains(&format!("retry of    {id}")));

    // A run planned for an hour from now is not in the default listing.
    let planned = crate::agents::run(core, home, "hello/default", &["a=1", "b=2"]);
    let later = system.ok(&[
        "deployment",
        "run",
        "hello/default",
        "--param",
        "a=1",
        "--param",
        "b=2",
        "--delay",
        "3600",
    ]);
    let later = later.lines().last().unwrap().to_owned();
    wait_for(core, home, &planned, "COMPLETED", Duration::from_secs(30));
    let ids = |args: &[&str]| -> Vec<String> {
        let listed: Vec<Value> = serde_json::from_str(&system.ok(args)).unwrap();
        listed.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
    };
    let shown = ids(&["run", "ls", "--json"]);
    assert_eq!(shown, [planned.clone(), retry.clone(), id.clone()]);
    assert_eq!(ids(&["run", "ls", "--upcoming", "--json"]), std::slice::from_ref(&later));
    assert_eq!(ids(&["run", "ls", "--all", "--json"]).len(), 4);
    assert_eq!(inspect(core, home, &later)["state"], "SCHEDULED");
}

#[test]
fn a_listing_cut_short_by_head_ends_quietly() {
    let system = System::start(1);
    let (core, home) = (&system.core, system.home.path());
    core.deploy(home, "hello", "default", "    parameters: {a: 1, b: 2}\n");
    // Enough planned runs that the listing outgrows a pipe's buffer, so
    // `head` closes it while `baton` is still writing.
    let address = core.api_address();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut http = baton_tests::http::Connection::open(address).await;
        let later = json!({"scheduled_at": 4_000_000_000_000_i64});
        for _ in 0..300 {
            let (status, _) =
                http.json("POST", "/api/deployments/hello/default/runs", &later).await;
            assert_eq!(status, 201);
        }
    });
    let listed = finish(core.baton(home).args(["run", "ls", "--all", "--limit", "500", "--json"]));
    assert!(listed.stdout.len() > 128 << 10, "only {} bytes", listed.stdout.len());
    let piped = finish(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "'{}' run ls --all --limit 500 --json | head -c 10",
                baton_tests::baton_binary().display()
            ))
            .env("BATON_HOME", home)
            .env("BATON_API_URL", &core.url),
    );
    assert_eq!(piped.status, Some(0), "{}", piped.stderr);
    assert_eq!(piped.stdout.len(), 10);
    assert!(piped.stderr.is_empty(), "{}", piped.stderr);
}

#[test]
fn a_deploy_the_core_refuses_in_part_writes_nothing_and_a_paused_deployment_takes_no_run() {
    let system = System::start(1);
    let (core, home) = (&system.core, system.home.path());
    let project = tempfile::tempdir().unwrap();
    let wasm = project.path().join("hello.wasm");
    std::fs::write(&wasm, baton_tests::flow_wasm("hello")).unwrap();
    let file = project.path().join("baton.yaml");
    std::fs::write(
        &file,
        "build: {component: hello.wasm}\n\
         deployments:\n\
         - name: first\n\
         - name: second\n\
         \x20 work_pool: no-such-pool\n",
    )
    .unwrap();
    let deployed = finish(core.baton(home).arg("deploy").arg("--file").arg(&file));
    assert_ne!(deployed.status, Some(0));
    assert!(
        deployed.stderr.contains("nothing was deployed")
            && deployed.stderr.contains("hello/second"),
        "{}",
        deployed.stderr
    );
    let listed: Vec<Value> =
        serde_json::from_str(&system.ok(&["deployment", "ls", "--json"])).unwrap();
    assert!(listed.is_empty(), "{listed:#?}");

    // Fixed, both land; paused, one takes no run and says so at once.
    std::fs::write(
        &file,
        "build: {component: hello.wasm}\ndeployments:\n- name: first\n- name: second\n",
    )
    .unwrap();
    system.ok(&["deploy", "--file", file.to_str().unwrap()]);
    let table = system.ok(&["deployment", "ls"]);
    assert!(table.lines().any(|l| l.starts_with("hello/first") && l.contains("0.1.0")), "{table}");
    system.ok(&["deployment", "pause", "hello/first"]);
    let started = std::time::Instant::now();
    let refused = finish(core.baton(home).args([
        "deployment",
        "run",
        "hello/first",
        "--param",
        "a=1",
        "--param",
        "b=2",
        "--watch",
    ]));
    assert_ne!(refused.status, Some(0));
    assert!(refused.stderr.contains("deployment hello/first is paused"), "{}", refused.stderr);
    assert!(started.elapsed() < Duration::from_secs(20), "it waited");
}

/// `baton deployment inspect` shows what a deployment grants and its
/// schedules in full: kind, zone as written, state, catch-up, the
/// parameters they override and their next times.
#[test]
fn deployment_inspect_shows_grants_and_schedules() {
    let system = System::start(1);
    let (core, home) = (&system.core, system.home.path());
    core.deploy(
        home,
        "prints",
        "nightly",
        "    parameters: {lines: 3}
    capabilities: {variables: [region], secrets: [token], outgoing_hosts: [api.example.com]}
    schedules:
      - {cron: \"0 3 * * *\", timezone: Europe/Berlin, parameters: {lines: 5}}
",
    );
    let shown = system.ok(&["deployment", "inspect", "prints/nightly"]);
    for expected in [
        "variables          region",
        "secrets            token",
        "outgoing hosts     api.example.com",
        "commands           -",
        "schedules          1",
        "cron 0 3 * * * (Europe/Berlin), active, catch-up",
        "parameters {\"lines\":5}",
        "next (UTC) ",
    ] {
        assert!(shown.contains(expected), "no {expected:?} in:\n{shown}");
    }
    let version = shown.lines().find(|l| l.trim_start().starts_with("flow version"));
    assert!(version.is_some_and(|l| !l.ends_with(" -")), "{shown}");
}
