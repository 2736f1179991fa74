//! The web UI's pages in real headless Chromium against a real core and
//! agent, beyond `ui.rs`: a run watched through its stages (a live Gantt
//! chart and progress), its log filtered and the run retried from its
//! page; the Run form's row editor (an object in a row edited as fields,
//! an emptied list sent as what it means), enum dropdown and checkboxes; the
//! Runs and Events filters typed into key by key and read from the URL;
//! events naming what they are about; the Deployments, Flows, Work pools
//! and Automations pages.

use std::time::{Duration, Instant};

use baton_tests::browser::Browser;
use baton_tests::{CoreProcess, System};
use fantoccini::Locator;
use serde_json::{Value, json};

/// `stages/paced`: three stages of 2 s, long enough to see each go by.
const PACED: &str = "    parameters:
      stages:
        - {name: extract, millis: 2000}
        - {name: transform, millis: 2000, warn: true}
        - {name: load, millis: 2000}
";

/// `stages/nightly`: no stages, a schedule in a zone of its own.
const NIGHTLY: &str = "    parameters: {stages: []}
    schedules:
      - {cron: \"0 3 * * *\", timezone: Europe/Berlin}
";

/// An automation whose trigger has a related resource.
const PAUSE_NIGHTLY: &str = "name: pause-nightly
trigger:
  reactive:
    event: run.failed
    related: deployment/stages/nightly
actions:
  - pause-deployment: {deployment: stages/nightly}
";

/// `stages/defaults`: a stage whose object is given, and a note.
const WITH_DEFAULTS: &str = "    parameters:
      stages:
        - {name: extract, millis: 10, report: {message: extracted, times: 2}}
      notes:
        - {text: from the deployment}
";

/// Runs `script` (a function body; `arguments[0]` is `argument`) in the
/// page and returns its answer.
pub(crate) async fn js(browser: &Browser, script: &str, argument: Value) -> Value {
    browser.client.execute(script, vec![argument]).await.unwrap()
}

/// The text of every element matching `css`, read at one moment.
pub(crate) async fn texts(browser: &Browser, css: &str) -> Vec<String> {
    let script = "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent);";
    let found = js(browser, script, json!(css)).await;
    serde_json::from_value(found).unwrap()
}

/// Waits (within 20 s) until `check` holds for the texts of `css`.
pub(crate) async fn wait_texts(
    browser: &Browser,
    css: &str,
    what: &str,
    check: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let started = Instant::now();
    loop {
        let seen = texts(browser, css).await;
        if check(&seen) {
            return seen;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{what}: `{css}` shows {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the form control matching `css`.
pub(crate) async fn value(browser: &Browser, css: &str) -> Value {
    js(browser, "return document.querySelector(arguments[0]).value;", json!(css)).await
}

/// Presses Enter in the field matching `css` (a filter takes its text).
async fn press_enter(browser: &Browser, css: &str) {
    let field = browser.client.find(Locator::Css(css)).await.unwrap();
    field.send_keys("\u{E007}").await.unwrap();
}

/// Submits the Run form and waits (within 20 s) for the run's page.
async fn submit_run(browser: &Browser) {
    let form = browser.path().await;
    browser.click(Locator::Css("form.run-form button[type=submit]")).await;
    let started = Instant::now();
    while !browser.path().await.starts_with("/runs/") {
        if started.elapsed() > Duration::from_secs(20) {
            let said = texts(browser, ".run-form .field-error, .failure").await;
            panic!("{form}: no run; the page says {said:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The query of the page shown.
async fn query(browser: &Browser) -> String {
    browser.client.current_url().await.unwrap().query().unwrap_or_default().to_owned()
}

#[test]
fn a_run_is_watched_through_its_stages_its_log_filtered_and_its_retry_links_back() {
    let system = System::start(2);
    let home = system.home.path();
    system.core.deploy(home, "stages", "paced", PACED);
    let base = system.core.url.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = Browser::start().await;
        let client = &browser.client;
        client.goto(&format!("{base}/deployments/stages/paced")).await.unwrap();

        // The list of objects is a row editor filled with the defaults, a
        // control per property; a checkbox sits on its label's line.
        browser.wait_text("form.run-form .rows", "Add row").await;
        assert_eq!(value(&browser, "#param-stages-0-name").await, "extract");
        assert_eq!(value(&browser, "#param-stages-2-millis").await, "2000");
        let warn = client.find(Locator::Css("#param-stages-1-warn")).await.unwrap();
        assert!(warn.is_selected().await.unwrap(), "transform's warn is not ticked");
        let aligned = js(
            &browser,
            "const [box, label] = ['#param-announce', 'label[for=param-announce]']
                .map(css => document.querySelector(css).getBoundingClientRect());
             const middle = box.top + box.height / 2;
             return middle > label.top && middle < label.bottom;",
            Value::Null,
        )
        .await;
        assert_eq!(aligned, true, "the checkbox is not on its label's line");

        // A row removed and one added; the enum chosen from its dropdown.
        browser.click(Locator::Css("button[aria-label='Remove row 3 of stages']")).await;
        browser.click(Locator::Css("#param-stages > button.add-row")).await;
        browser.fill("#param-stages-2-name", "publish").await;
        browser.fill("#param-stages-2-millis", "1500").await;
        browser.click(Locator::Css("#param-ending option[value='\"fail\"']")).await;
        browser.click(Locator::Css("form.run-form button[type=submit]")).await;
        browser.wait_text("main h1", "RUNNING").await;
        let first_page = browser.path().await;
        let first = first_page.strip_prefix("/runs/").unwrap().to_owned();

        // While it runs: its progress, and a Gantt chart that moves, a
        // finished task shown finished while the next one runs.
        browser.wait_text(".progress", "stage").await;
        let started = Instant::now();
        loop {
            let seen = js(
                &browser,
                "return {
                    state: document.querySelector('main h1').textContent,
                    bars: [...document.querySelectorAll('svg.gantt rect')]
                        .map(r => [r.querySelector('title').textContent, r.getAttribute('class')]),
                 };",
                Value::Null,
            )
            .await;
            let bars: Vec<(String, String)> = serde_json::from_value(seen["bars"].clone()).unwrap();
            let bar = |task: &str, class: &str| {
                bars.iter().any(|(title, c)| title.starts_with(&format!("{task}:")) && c == class)
            };
            let state = seen["state"].as_str().unwrap_or_default();
            assert!(state.contains("RUNNING"), "the run ended before its Gantt moved: {seen}");
            assert!(!bar("extract", "fill-running") || !bar("extract", "fill-completed"), "{seen}");
            if bar("extract", "fill-completed") && bar("transform", "fill-running") {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no live Gantt: {seen}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        browser.wait_text("main h1", "FAILED").await;
        let runs = system.runs("stages/paced");
        let parameters = &runs[0]["parameters"];
        assert_eq!(parameters["ending"], "fail", "{parameters}");
        let stages = parameters["stages"].as_array().unwrap();
        let names: Vec<&str> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["extract", "transform", "publish"], "{parameters}");
        assert_eq!(parameters["stages"][2]["millis"], 1500);
        assert_eq!(parameters["stages"][1]["warn"], true);

        // Its log, narrowed by level, then by text.
        browser.wait_text("ol.logs", "stage publish started").await;
        let all = texts(&browser, "ol.logs li").await.len();
        let first_execution = texts(&browser, "ol.logs li .message")
            .await
            .into_iter()
            .find(|l| l.starts_with("execution started at"))
            .expect("the run logs when it started");
        browser.click(Locator::Css(".log-filters option[value='warn']")).await;
        let warnings = wait_texts(&browser, "ol.logs li", "warnings only", |lines| {
            lines.len() < all && lines.iter().all(|l| l.contains("WARN") || l.contains("ERROR"))
        })
        .await;
        let warned = warnings.iter().any(|l| l.contains("stage transform took 2000 ms"));
        assert!(warned, "{warnings:?}");
        browser.click(Locator::Css(".log-filters label:first-of-type option[value='']")).await;
        wait_texts(&browser, "ol.logs li", "all lines again", |lines| lines.len() == all).await;
        let typed = browser.type_keys(".log-filters input[type=search]", "EXTRACT").await;
        assert_eq!(typed, "EXTRACT");
        press_enter(&browser, ".log-filters input[type=search]").await;
        let found = wait_texts(&browser, "ol.logs li", "lines about extract", |lines| {
            let about = |line: &String| line.to_lowercase().contains("extract");
            !lines.is_empty() && lines.len() < all && lines.iter().all(about)
        })
        .await;
        assert!(found.iter().any(|l| l.contains("stage extract started")), "{found:?}");

        // Retried from its page: the new run links back and shows its own
        // log, not the old run's.
        browser.click(Locator::XPath("//button[text()='Retry']")).await;
        let started = Instant::now();
        while browser.path().await == first_page {
            assert!(started.elapsed() < Duration::from_secs(20), "Retry opened no new run");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        browser.wait_text("dl.facts", "Retry of").await;
        let retried = browser.href(Locator::Css("dl.facts dd a[href*='/runs/']")).await;
        let href = retried.unwrap_or_default();
        assert!(href.ends_with(&format!("/runs/{first}")), "{href}");
        let lines = wait_texts(&browser, "ol.logs li .message", "the retry's own start", |lines| {
            lines.iter().any(|l| l.starts_with("execution started at"))
        })
        .await;
        assert!(!lines.contains(&first_execution), "the retry shows the old run's log: {lines:?}");
        browser.close().await;
    });
}

#[test]
fn runs_and_events_filter_as_typed_and_events_link_what_they_are_about() {
    let system = System::start(2);
    let home = system.home.path();
    system.core.deploy(home, "hello", "default", "    parameters: {a: 1, b: 2}\n");
    system.core.deploy(home, "stages", "quick", "    parameters: {stages: []}\n");
    let runs: Vec<String> = ["hello/default", "hello/default", "stages/quick"]
        .into_iter()
        .map(|deployment| crate::agents::run(&system.core, home, deployment, &[]))
        .collect();
    for id in &runs {
        crate::agents::wait_for(&system.core, home, id, "COMPLETED", Duration::from_secs(30));
    }
    let base = system.core.url.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = Browser::start().await;
        let client = &browser.client;

        // The Runs page's Deployment filter, typed key by key.
        client.goto(&format!("{base}/runs")).await.unwrap();
        browser.wait_text("table.runs", "stages/quick").await;
        let field = "input[placeholder='flow/name']";
        assert_eq!(browser.type_keys(field, "hello/default").await, "hello/default");
        press_enter(&browser, field).await;
        wait_texts(&browser, "table.runs tbody td:nth-child(2)", "hello's runs only", |cells| {
            cells.len() == 2 && cells.iter().all(|c| c == "hello/default")
        })
        .await;
        assert!(query(&browser).await.contains("deployment=hello%2Fdefault"));
        assert_eq!(value(&browser, field).await, "hello/default");

        // The Events page's Name filter, typed key by key, into the URL.
        client.goto(&format!("{base}/events")).await.unwrap();
        browser.wait_text("table.events", "run.completed").await;
        let field = "input[placeholder='run.* or webhook.*']";
        assert_eq!(browser.type_keys(field, "run.completed").await, "run.completed");
        press_enter(&browser, field).await;
        wait_texts(&browser, "table.events tbody td:nth-child(2)", "run.completed only", |names| {
            names.len() == 3 && names.iter().all(|n| n == "run.completed")
        })
        .await;
        assert_eq!(query(&browser).await, "name=run.completed");

        // Each names its run and, related, its deployment: links to both.
        let links = js(
            &browser,
            "return [...document.querySelectorAll('table.events tbody tr')].map(row => [
                row.querySelector('td:nth-child(3) a').getAttribute('href'),
                [...row.querySelectorAll('td.related a')].map(a => a.getAttribute('href')),
             ]);",
            Value::Null,
        )
        .await;
        let links: Vec<(String, Vec<String>)> = serde_json::from_value(links).unwrap();
        for id in &runs {
            assert!(links.iter().any(|(run, _)| *run == format!("/runs/{id}")), "{links:?}");
        }
        assert!(
            links.iter().any(|(_, related)| related == &["/deployments/hello/default"]),
            "{links:?}"
        );
        assert!(links.iter().any(|(_, related)| related == &["/deployments/stages/quick"]));
        browser.click(Locator::Css("table.events tbody td.related a")).await;
        browser.wait_text("main h1", "/").await;
        assert!(browser.path().await.starts_with("/deployments/"));

        // A name in the URL is the filter, shown in its field; in a
        // narrow window "… s ago" stays on one line.
        client.set_window_size(900, 900).await.unwrap();
        client.goto(&format!("{base}/events?name=deployment.*")).await.unwrap();
        wait_texts(&browser, "table.events tbody td:nth-child(2)", "deployment events", |names| {
            names.len() >= 2 && names.iter().all(|n| n.starts_with("deployment."))
        })
        .await;
        assert_eq!(value(&browser, field).await, "deployment.*");
        let wrapped = js(
            &browser,
            "return [...document.querySelectorAll('table.events td.when time')]
                .filter(t => t.getClientRects().length !== 1).map(t => t.textContent);",
            Value::Null,
        )
        .await;
        assert_eq!(wrapped, json!([]), "times broken over lines");
        browser.close().await;
    });
}

#[test]
fn deployments_flows_pools_and_automations_pages_show_what_they_hold() {
    let core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    core.deploy(home.path(), "hello", "default", "");
    core.deploy(home.path(), "stages", "nightly", NIGHTLY);
    let automation = home.path().join("automation.yaml");
    std::fs::write(&automation, PAUSE_NIGHTLY).unwrap();
    core.ok(home.path(), &["automation", "create", "-f", automation.to_str().unwrap()]);
    let base = core.url.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = Browser::start().await;
        let client = &browser.client;

        // The list: each deployment's flow version; the Status filter
        // shows what is listed, also after a reload.
        client.goto(&format!("{base}/deployments")).await.unwrap();
        let listed = |count: usize| {
            move |rows: &[String]| {
                rows.len() == count && rows.iter().any(|r| r.contains("stages/nightly"))
            }
        };
        let rows = wait_texts(&browser, "main table tbody tr", "both deployments", listed(2)).await;
        let nightly = rows.iter().find(|r| r.contains("stages/nightly")).unwrap();
        assert!(nightly.contains("0.3.1"), "{nightly}");
        assert_eq!(value(&browser, ".filters select").await, "");
        browser.click(Locator::Css(".filters select option[value='scheduled']")).await;
        wait_texts(&browser, "main table tbody tr", "the scheduled one", listed(1)).await;
        assert_eq!(query(&browser).await, "status=scheduled");
        client.refresh().await.unwrap();
        wait_texts(&browser, "main table tbody tr", "the scheduled one, reloaded", listed(1)).await;
        assert_eq!(value(&browser, ".filters select").await, "scheduled");

        // A deployment's page: its flow version; its schedule's zone as
        // written, and next times in that zone, labelled with it.
        browser.click(Locator::LinkText("stages/nightly")).await;
        browser.wait_text("dl.facts", "0.3.1").await;
        let schedule = browser.wait_text("li.schedule", "Next:").await;
        assert!(schedule.contains("(Europe/Berlin, catch-up skip)"), "{schedule}");
        assert!(schedule.contains("03:00:00 Europe/Berlin"), "{schedule}");

        // A missing deployment says so once.
        client.goto(&format!("{base}/deployments/nope/nothing")).await.unwrap();
        let missing = wait_texts(&browser, "main", "the page read", |main| {
            main.iter().any(|m| m.contains("not found") && !m.contains("Loading"))
        })
        .await
        .concat();
        assert_eq!(missing.matches("not found").count(), 1, "{missing}");

        // Flows: each with its versions and the deployments running them.
        client.goto(&format!("{base}/flows")).await.unwrap();
        let card = browser.wait_text("article[aria-label='Flow stages']", "stages/nightly").await;
        assert!(card.contains("version 0.3.1"), "{card}");

        // Automations: an event pattern as code, not between backticks.
        client.goto(&format!("{base}/automations")).await.unwrap();
        browser.wait_text("main table", "pause-nightly").await;
        let code = texts(&browser, "main table td code").await;
        assert!(code.contains(&"run.failed".to_owned()), "{code:?}");
        let page = browser.wait_text("main", "pause-nightly").await;
        assert!(!page.contains('`'), "backticks shown: {page}");

        // A work pool and a queue created from the UI.
        client.goto(&format!("{base}/work-pools")).await.unwrap();
        browser.click(Locator::Css("details.new-pool summary")).await;
        browser.fill("details.new-pool input[placeholder='edge']", "edge").await;
        browser.click(Locator::Css("details.new-pool button[type=submit]")).await;
        let queue_form = "form[aria-label='New queue in edge']";
        browser.fill(&format!("{queue_form} input[placeholder='urgent']"), "urgent").await;
        browser.fill(&format!("{queue_form} label:nth-of-type(2) input"), "2").await;
        browser.click(Locator::Css(&format!("{queue_form} button[type=submit]"))).await;
        browser.wait_text("main", "urgent").await;
        let pools: Value =
            serde_json::from_str(&core.ok(home.path(), &["pool", "ls", "--json"])).unwrap();
        let edge = pools.as_array().unwrap().iter().find(|p| p["name"] == "edge");
        let queue =
            edge.and_then(|p| p["queues"].as_array()?.iter().find(|q| q["name"] == "urgent"));
        assert_eq!(queue.map(|q| &q["priority"]), Some(&json!(2)), "{pools:#}");
        browser.close().await;
    });
}

#[test]
fn the_row_editor_edits_objects_in_rows_and_an_emptied_list_sends_what_it_says() {
    let core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    core.deploy(home.path(), "stages", "defaults", WITH_DEFAULTS);
    core.deploy(home.path(), "stages", "bare", "    parameters: {stages: []}\n");
    let base = core.url.clone();
    let parameters = |deployment: &str| core.runs(home.path(), deployment)[0]["parameters"].clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = Browser::start().await;
        let client = &browser.client;

        // An object inside a row is fields of its own, filled from the
        // deployment's parameters; a new row's is filled in part or not.
        client.goto(&format!("{base}/deployments/stages/defaults")).await.unwrap();
        browser.wait_text("#param-stages", "Add row").await;
        assert_eq!(value(&browser, "#param-stages-0-report-message").await, "extracted");
        assert_eq!(value(&browser, "#param-stages-0-report-times").await, "2");
        assert_eq!(value(&browser, "#param-notes-0-text").await, "from the deployment");
        browser.click(Locator::Css("#param-stages > button.add-row")).await;
        browser.fill("#param-stages-1-name", "load").await;
        browser.fill("#param-stages-1-millis", "20").await;
        browser.fill("#param-stages-1-report-message", "loaded").await;
        browser.click(Locator::Css("#param-stages > button.add-row")).await;
        browser.fill("#param-stages-2-name", "tidy").await;
        browser.fill("#param-stages-2-millis", "5").await;
        submit_run(&browser).await;
        let sent = parameters("stages/defaults");
        let stages = json!([
            {"name": "extract", "millis": 10, "warn": false, "report": {"message": "extracted", "times": 2}},
            {"name": "load", "millis": 20, "warn": false, "report": {"message": "loaded"}},
            {"name": "tidy", "millis": 5, "warn": false},
        ]);
        assert_eq!(sent["stages"], stages, "{sent:#}");
        assert_eq!(sent["notes"], json!([{"text": "from the deployment"}]), "{sent:#}");

        // Every row removed: the required list is sent empty, and so is
        // the optional one that had the deployment's rows (sending
        // nothing would bring them back).
        client.goto(&format!("{base}/deployments/stages/defaults")).await.unwrap();
        browser.wait_text("#param-notes", "Add row").await;
        browser.click(Locator::Css("button[aria-label='Remove row 1 of stages']")).await;
        browser.click(Locator::Css("button[aria-label='Remove row 1 of notes']")).await;
        submit_run(&browser).await;
        let sent = parameters("stages/defaults");
        assert_eq!((&sent["stages"], &sent["notes"]), (&json!([]), &json!([])), "{sent:#}");

        browser.close().await;

        // An optional list that had no rows, given one and it removed
        // again: nothing is sent for it. (In a browser of its own: in
        // the first, a fifth page's requests wait without end, it seems
        // for Chromium's six connections to one host, which the event
        // streams of the pages before still hold.)
        let browser = Browser::start().await;
        let client = &browser.client;
        client.goto(&format!("{base}/deployments/stages/bare")).await.unwrap();
        browser.wait_text("#param-notes", "Add row").await;
        browser.click(Locator::Css("#param-notes > button.add-row")).await;
        browser.fill("#param-notes-0-text", "soon gone").await;
        browser.click(Locator::Css("button[aria-label='Remove row 1 of notes']")).await;
        submit_run(&browser).await;
        let sent = parameters("stages/bare");
        assert_eq!(sent.get("notes"), None, "{sent:#}");
        assert_eq!(sent["stages"], json!([]), "{sent:#}");
        browser.close().await;
    });
}
