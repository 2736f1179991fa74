//! The web UI in real headless Chromium (driven through chromedriver)
//! against a real core and agent: the dashboard and navigation, a
//! deployment's Run form refusing a value the schema rejects, a run started
//! from it and followed to COMPLETED with its logs, a schedule paused and
//! resumed, a long run followed with a read-only API token (Cancel refused)
//! and then cancelled from its page, and deep links.

use baton_tests::System;
use baton_tests::browser::Browser;
use fantoccini::Locator;
use serde_json::Value;

#[test]
fn a_person_runs_follows_and_cancels_runs_from_the_ui() {
    let system = System::start(4);
    let home = system.home.path();
    system.core.deploy(
        home,
        "prints",
        "default",
        "    parameters: {lines: 3}\n    schedules:\n      - cron: \"0 3 * * *\"\n",
    );
    system.core.deploy(home, "sleeps", "long", "    parameters: {millis: 600000}\n");
    let base = system.core.url.clone();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = Browser::start().await;
        let client = &browser.client;

        // The dashboard, and every section in the navigation.
        client.goto(&format!("{base}/")).await.unwrap();
        let nav = browser.wait_text("nav", "Automations").await;
        for word in ["Dashboard", "Deployments", "Runs", "Work pools", "Automations"] {
            assert!(nav.contains(word), "the navigation lacks {word}: {nav}");
        }
        browser.wait_text("main", "Runs in the last 24 hours").await;
        browser.wait_text("main", "pool default").await; // the agent
        // Settled, the dashboard reads again only when runs change: its
        // windows must not move with every render (which once re-read
        // without end).
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let reads = client
            .execute(
                "return performance.getEntriesByType('resource')\
                 .filter(e => e.name.includes('/api/runs')).length;",
                vec![],
            )
            .await
            .unwrap();
        assert!(reads.as_u64().unwrap() <= 12, "the dashboard read runs {reads} times in 2 s");
        for (link, heading) in
            [("Work pools", "Work pools"), ("Automations", "Automations"), ("Runs", "Runs")]
        {
            browser.click(Locator::LinkText(link)).await;
            browser.wait_text("main h1", heading).await;
        }

        // A deployment's page: its schedule, paused and resumed.
        browser.click(Locator::LinkText("Deployments")).await;
        browser.click(Locator::LinkText("prints/default")).await;
        assert_eq!(browser.path().await, "/deployments/prints/default");
        browser.wait_text("main", "cron 0 3 * * *").await;
        let schedule = |active: bool| {
            let listed: Value = serde_json::from_str(&system.ok(&[
                "deployment",
                "schedule",
                "ls",
                "prints/default",
                "--json",
            ]))
            .unwrap();
            listed[0]["active"] == active
        };
        browser.click(Locator::Css("li.schedule button")).await;
        browser.wait_text("li.schedule", "paused").await;
        assert!(schedule(false), "the schedule is still active after Pause");
        browser.click(Locator::Css("li.schedule button")).await;
        browser.wait_text("li.schedule", "Next:").await;
        assert!(schedule(true), "the schedule is not active after Resume");

        // The Run form refuses what the schema refuses, before sending.
        browser.fill("#param-lines", "-3").await;
        browser.click(Locator::Css("form.run-form button[type=submit]")).await;
        let message = browser.wait_text(".run-form .field-error", "").await;
        assert!(
            message.contains('0') || message.contains("minimum"),
            "unexpected message: {message}"
        );
        assert_eq!(browser.path().await, "/deployments/prints/default");
        // (Its schedule planned runs; none other may exist.)
        let asked = || -> Vec<Value> {
            system
                .runs("prints/default")
                .into_iter()
                .filter(|r| {
                    !r["idempotency_key"].as_str().is_some_and(|k| k.starts_with("schedule:"))
                })
                .collect()
        };
        assert!(asked().is_empty(), "a refused form created a run");

        // A good value: the run's page follows it to COMPLETED, logs shown.
        browser.fill("#param-lines", "5").await;
        browser.fill("#run-job-variables", r#"{"memory_mib": 128}"#).await;
        browser.click(Locator::Css("form.run-form button[type=submit]")).await;
        browser.wait_text("main h1", "COMPLETED").await;
        let path = browser.path().await;
        let id = path.strip_prefix("/runs/").expect("the form leads to the run's page").to_owned();
        browser.wait_text(".logs", "printed 5 lines").await;
        browser.wait_text(".logs", "line 4").await;
        browser.wait_text("dl.facts", "wasm sandbox").await;
        browser.wait_text("dl.facts", r#"{"memory_mib":128}"#).await;
        let runs = asked();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0]["id"], id.as_str());
        assert_eq!(runs[0]["parameters"]["lines"], 5);
        assert_eq!(runs[0]["job_variables"]["memory_mib"], 128);

        // A deep link opens the same page.
        client.goto(&format!("{base}/runs/{id}")).await.unwrap();
        browser.wait_text("main h1", "COMPLETED").await;
        browser.wait_text(".logs", "printed 5 lines").await;

        // The dashboard's timeline: a run's bar is reached by keyboard and
        // Enter opens the run.
        client.goto(&format!("{base}/")).await.unwrap();
        let bar = client
            .wait()
            .at_most(std::time::Duration::from_secs(20))
            .for_element(Locator::Css("svg.chart rect[role=link]"))
            .await
            .unwrap();
        bar.send_keys("\u{E007}").await.unwrap();
        for _ in 0..100 {
            if browser.path().await.starts_with("/runs/") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(
            browser.path().await.starts_with("/runs/"),
            "Enter on a timeline bar opened no run"
        );

        // A long run, followed with a read-only API token: its page
        // reads, but Cancel is refused with the scope it needs.
        client.goto(&format!("{base}/deployments/sleeps/long")).await.unwrap();
        browser.click(Locator::Css("form.run-form button[type=submit]")).await;
        browser.wait_text("main h1", "RUNNING").await;
        let run_page = browser.path().await;
        let made = system.ok(&["api-token", "create", "--scope", "read"]);
        let read_token = made.lines().last().unwrap().to_owned();
        let use_token = |token: Option<String>| {
            let script = match &token {
                Some(_) => "localStorage.setItem('baton.api_token', arguments[0]);",
                None => "localStorage.removeItem('baton.api_token');",
            };
            client.execute(script, token.into_iter().map(Value::from).collect())
        };
        use_token(Some(read_token)).await.unwrap();
        client.goto(&format!("{base}{run_page}")).await.unwrap();
        browser.wait_text("main h1", "RUNNING").await;
        browser.click(Locator::Css("button.danger")).await;
        let refused = browser.wait_text(".failure", "scope").await;
        assert!(refused.contains("`run`"), "a read token's Cancel: {refused}");
        assert_eq!(system.runs("sleeps/long")[0]["state"], "RUNNING");

        // Without it (this core has no --api-token), cancelled from its page.
        use_token(None).await.unwrap();
        client.goto(&format!("{base}{run_page}")).await.unwrap();
        browser.wait_text("main h1", "RUNNING").await;
        browser.click(Locator::Css("button.danger")).await;
        browser.wait_text("main h1", "CANCELLED").await;
        let runs = system.runs("sleeps/long");
        assert_eq!(runs[0]["state"], "CANCELLED");

        browser.close().await;
    });
}

/// A run's artifacts through the API, `baton run inspect` and its page in
/// the browser: Markdown rendered (its raw HTML as text, a `javascript:`
/// link made harmless), the table as a table, the link and the progress.
#[test]
fn a_run_s_artifacts_are_listed_and_shown_safely_on_its_page() {
    let system = System::start(2);
    let home = system.home.path();
    system.core.deploy(home, "report", "default", "");
    let id = crate::agents::run(&system.core, home, "report/default", &["title=Sales"]);
    crate::agents::wait_for(
        &system.core,
        home,
        &id,
        "COMPLETED",
        std::time::Duration::from_secs(30),
    );

    let shown = system.ok(&["run", "inspect", &id]);
    for line in [
        "daily-report markdown: # Sales",
        "regions table: 2 rows × 2 columns (orders, region)",
        "(no key) link: Dashboard <https://example.com/dashboard>",
        "load progress: 75%",
    ] {
        assert!(shown.contains(line), "{line:?} not in {shown}");
    }
    let detail: Value =
        serde_json::from_str(&system.ok(&["run", "inspect", &id, "--json"])).unwrap();
    assert_eq!(detail["artifacts"][1]["key"], "regions", "{detail:#}");
    assert_eq!(detail["artifacts"][1]["kind"], "table");
    assert_eq!(detail["artifacts"][1]["content"][0]["region"], "eu-west");

    let address = system.core.api_address();
    let base = system.core.url.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut http = baton_tests::http::Connection::open(address).await;
        let (status, listed) =
            http.json("GET", &format!("/api/runs/{id}/artifacts"), &Value::Null).await;
        assert_eq!(status, 200, "{listed}");
        assert_eq!(listed.as_array().map(Vec::len), Some(4), "{listed:#}");
        let (status, latest) = http.json("GET", "/api/run-artifacts/load", &Value::Null).await;
        assert_eq!((status, &latest["content"]), (200, &serde_json::json!(0.75)), "{latest:#}");

        let browser = Browser::start().await;
        let client = &browser.client;
        client.goto(&format!("{base}/runs/{id}")).await.unwrap();
        browser.wait_text("main", "Artifacts").await;
        browser.wait_text(".artifact.markdown h1", "Sales").await;
        browser.wait_text(".artifact.markdown .markdown strong", "1204").await;
        // Raw HTML is text; the script did not run; the link goes nowhere.
        browser.wait_text(".artifact.markdown .markdown", "<script>").await;
        let title = client.title().await.unwrap();
        assert_ne!(title, "pwned", "a flow's markdown ran script in the UI");
        let href = browser.href(Locator::LinkText("click")).await.unwrap_or_default();
        assert!(!href.starts_with("javascript:"), "a javascript: link was kept: {href}");
        browser.wait_text(".artifact.table table", "eu-west").await;
        let cells = browser.wait_text(".artifact.table tbody tr:nth-child(2)", "us-east").await;
        assert!(cells.contains("504"), "{cells}");
        let link = browser.href(Locator::Css(".artifact.link a")).await;
        assert_eq!(link.as_deref(), Some("https://example.com/dashboard"));
        browser.wait_text(".artifact.progress", "75%").await;
        browser.close().await;
    });
}

#[test]
fn a_parent_run_s_page_lists_its_subflows_and_a_child_s_page_links_its_parent() {
    let system = System::start(2);
    let home = system.home.path();
    system.core.deploy(home, "subflow", "default", "");
    system.core.deploy(home, "hello", "default", "");
    let params = ["deployment=hello/default", r#"params={"a": 20, "b": 22}"#];
    let id = crate::agents::run(&system.core, home, "subflow/default", &params);
    let (parent, _) = crate::agents::wait_for(
        &system.core,
        home,
        &id,
        "COMPLETED",
        std::time::Duration::from_secs(30),
    );
    let child_id = parent["output"]["id"].as_str().unwrap().to_owned();
    let base = system.core.url.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = Browser::start().await;
        let client = &browser.client;
        client.goto(&format!("{base}/runs/{id}")).await.unwrap();
        browser.wait_text("main", "Subflows").await;
        let row = browser.wait_text("table[aria-label='Subflows'] tbody tr", "hello/default").await;
        assert!(row.to_lowercase().contains("completed"), "{row}");
        let href = browser
            .href(Locator::Css("table[aria-label='Subflows'] tbody a"))
            .await
            .unwrap_or_default();
        assert!(href.ends_with(&format!("/runs/{child_id}")), "{href}");

        client.goto(&format!("{base}/runs/{child_id}")).await.unwrap();
        browser.wait_text("dl.facts", "Parent").await;
        let href =
            browser.href(Locator::Css("dl.facts dd a[href*='/runs/']")).await.unwrap_or_default();
        assert!(href.ends_with(&format!("/runs/{id}")), "{href}");
        browser.close().await;
    });
}
