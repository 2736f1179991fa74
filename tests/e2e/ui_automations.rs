//! The automation editor in real headless Chromium against a real core:
//! an automation typed into the form key by key, its YAML following
//! beside it, the rules the core applies shown as it is typed (and Save
//! held back), saved and read back through the API exactly as entered;
//! edited (renamed, an action moved and changed) under the same id; and
//! YAML pasted into the editor filling the form, a broken one named
//! without losing the form.

use std::time::{Duration, Instant};

use baton_proto::v1::AutomationSpec;
use baton_tests::CoreProcess;
use baton_tests::browser::Browser;
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::ui_pages::{js, value};

/// What the form is given in the first part, as the API keeps it.
fn entered() -> Value {
    json!({
        "name": "nightly-watch",
        "description": "Page when nightly is quiet",
        "trigger": {"proactive": {
            "event": "run.completed",
            "related": "deployment/etl/nightly",
            "payload": {"to": "COMPLETED", "attempt": 1},
            "threshold": 2,
            "within": 90_000,
        }},
        "actions": [
            {"run-deployment": {
                "deployment": "etl/b",
                "parameters": {"source": "{{ event.resource_id }}"},
            }},
            {"call-webhook": {
                "url": "https://hooks.example.com/page",
                "method": "PUT",
                "body": "no nightly run in 25 hours",
            }},
        ],
    })
}

/// An automation as `baton automation inspect` shows it, pasted.
const PASTED: &str = "name: fail-stuck
description: Give up on runs stuck pending
trigger:
  reactive:
    event: run.pending
    resource: run/*
    within: 2h
actions:
  - change-run-state:
      state: FAILED
      message: stuck
  - pause-pool:
      pool: edge
";

/// The spec the YAML box holds now.
async fn yaml_spec(browser: &Browser) -> Result<AutomationSpec, String> {
    let yaml = value(browser, "#automation-yaml").await;
    AutomationSpec::from_yaml(yaml.as_str().unwrap_or_default())
}

/// Waits (within 20 s) for the YAML box to hold `wanted`.
async fn wait_yaml(browser: &Browser, wanted: &AutomationSpec) {
    let started = Instant::now();
    loop {
        let seen = yaml_spec(browser).await;
        if seen.as_ref() == Ok(wanted) {
            return;
        }
        let yaml = value(browser, "#automation-yaml").await;
        assert!(started.elapsed() < Duration::from_secs(20), "the YAML shows {yaml} ({seen:?})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The problem the form shows under it now ("" for none), and whether
/// Save can be pressed.
async fn problem_and_save(browser: &Browser) -> (String, bool) {
    let seen = js(
        browser,
        "const problem = document.querySelector('#automation-problem');
         const save = document.querySelector('form.automation-form button[type=submit]');
         return [problem ? problem.textContent : '', !save.disabled];",
        Value::Null,
    )
    .await;
    serde_json::from_value(seen).unwrap()
}

/// Waits (within 20 s) for the form's problem to contain `words`, Save
/// held back.
async fn wait_problem(browser: &Browser, words: &str) {
    let started = Instant::now();
    loop {
        let (problem, can_save) = problem_and_save(browser).await;
        if problem.contains(words) {
            assert!(!can_save, "Save is offered beside {problem:?}");
            assert!(!problem.contains('`'), "backticks shown: {problem}");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no {words:?}; the form says {problem:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Types `text` into the field `css` key by key; it must hold all of it.
async fn type_into(browser: &Browser, css: &str, text: &str) {
    assert_eq!(browser.type_keys(css, text).await, text, "{css} lost keys");
}

/// Picks the dropdown `css`'s option for `word` (a JSON string's text).
async fn pick(browser: &Browser, css: &str, word: &str) {
    browser.click(Locator::Css(&format!("{css} option[value='\"{word}\"']"))).await;
    assert_eq!(value(browser, css).await, format!("\"{word}\""), "{css}");
}

/// Waits (within 20 s) for the page at `path`.
async fn wait_path(browser: &Browser, path: &str) {
    let started = Instant::now();
    while browser.path().await != path {
        assert!(started.elapsed() < Duration::from_secs(20), "still at {}", browser.path().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn an_automation_is_made_in_the_form_saved_as_entered_and_edited_under_its_id() {
    let core = CoreProcess::start(None);
    let address = core.api_address();
    let base = core.url.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut http = baton_tests::http::Connection::open(address).await;
        let browser = Browser::start().await;
        let client = &browser.client;
        client.goto(&format!("{base}/automations")).await.unwrap();
        browser.click(Locator::LinkText("New automation")).await;
        wait_path(&browser, "/automations/new").await;
        let nav = browser.wait_text("nav a.current", "Automations").await;
        assert_eq!(nav, "Automations");

        // Typed key by key; the rules show as soon as they are broken.
        type_into(&browser, "#automation-name", "nightly-watch").await;
        type_into(&browser, "#automation-description", "Page when nightly is quiet").await;
        pick(&browser, "#automation-trigger", "proactive").await;
        wait_problem(&browser, "a proactive trigger needs within").await;
        type_into(&browser, "#automation-event", "run.completed").await;
        type_into(&browser, "#automation-related", "deployment/etl/nightly").await;
        type_into(&browser, "#automation-within", "25").await;
        type_into(&browser, "#automation-within", "25x").await;
        let problem = browser.wait_text(".field.invalid .field-error", "not a duration").await;
        assert!(problem.contains("25x"), "{problem}");
        type_into(&browser, "#automation-within", "25h").await;
        wait_problem(&browser, "needs at least one action").await;
        browser.click(Locator::Css("button.add-condition")).await;
        type_into(&browser, "#payload-0-path", "to").await;
        type_into(&browser, "#payload-0-value", "COMPLETED").await;
        browser.click(Locator::Css("button.add-condition")).await;
        type_into(&browser, "#payload-1-path", "attempt").await;
        type_into(&browser, "#payload-1-value", "1").await;
        type_into(&browser, "#automation-threshold", "2").await;

        // Actions: one run-deployment (refused without its `/`), one
        // webhook picked from the kinds.
        browser.click(Locator::Css("button.add-action")).await;
        assert_eq!(value(&browser, "#action-0-kind").await, "\"run-deployment\"");
        type_into(&browser, "#action-0-deployment", "etl").await;
        wait_problem(&browser, "actions[0]: deployment etl is not FLOW/DEPLOYMENT").await;
        type_into(&browser, "#action-0-deployment", "etl/b").await;
        type_into(&browser, "#action-0-parameters", r#"{"source": "{{ event.resource_id }}"}"#)
            .await;
        browser.click(Locator::Css("button.add-action")).await;
        pick(&browser, "#action-1-kind", "call-webhook").await;
        type_into(&browser, "#action-1-url", "https://hooks.example.com/page").await;
        pick(&browser, "#action-1-method", "PUT").await;
        type_into(&browser, "#action-1-body", "no nightly run in 25 hours").await;

        // The YAML beside the form says the same, and the rules hold.
        let spec: AutomationSpec = serde_json::from_value(entered()).unwrap();
        wait_yaml(&browser, &spec).await;
        let yaml = value(&browser, "#automation-yaml").await;
        assert!(yaml.as_str().unwrap().contains("within: 25h"), "{yaml}");
        assert_eq!(problem_and_save(&browser).await, (String::new(), true));
        browser.click(Locator::Css("button.check")).await;
        browser.wait_text(".automation-form .saved", "accepts").await;
        let (status, _) = http.json("GET", "/api/automations/nightly-watch", &Value::Null).await;
        assert_eq!(status, 404, "a check saved the automation");

        // Saved: the core keeps exactly what was entered.
        browser.click(Locator::Css("form.automation-form button[type=submit]")).await;
        wait_path(&browser, "/automations").await;
        let (status, saved) =
            http.json("GET", "/api/automations/nightly-watch", &Value::Null).await;
        assert_eq!(status, 200, "{saved}");
        for field in ["name", "description", "trigger", "actions"] {
            assert_eq!(saved[field], entered()[field], "{field}: {saved:#}");
        }
        let id = saved["id"].as_str().unwrap().to_owned();

        // Edited from its row: renamed, the webhook moved first, the
        // run-deployment made a pause of the same deployment.
        browser.wait_text("main table", "nightly-watch").await;
        browser.click(Locator::Css("a.button[href='/automations/nightly-watch/edit']")).await;
        wait_path(&browser, "/automations/nightly-watch/edit").await;
        browser.wait_text("main h1", "Edit automation nightly-watch").await;
        assert_eq!(value(&browser, "#automation-within").await, "25h");
        let mut conditions = Vec::new();
        for row in 0..2 {
            let path = value(&browser, &format!("#payload-{row}-path")).await;
            let value = value(&browser, &format!("#payload-{row}-value")).await;
            conditions
                .push((path.as_str().unwrap().to_owned(), value.as_str().unwrap().to_owned()));
        }
        conditions.sort();
        assert_eq!(conditions, [("attempt".into(), "1".into()), ("to".into(), "COMPLETED".into())]);
        assert_eq!(value(&browser, "#action-1-method").await, "\"PUT\"");
        type_into(&browser, "#automation-name", "nightly-quiet").await;
        browser.click(Locator::Css("button[aria-label='Move action 2 up']")).await;
        assert_eq!(value(&browser, "#action-0-kind").await, "\"call-webhook\"");
        pick(&browser, "#action-1-kind", "pause-deployment").await;
        assert_eq!(value(&browser, "#action-1-deployment").await, "etl/b");
        browser.click(Locator::Css("form.automation-form button[type=submit]")).await;
        wait_path(&browser, "/automations").await;
        let (status, renamed) =
            http.json("GET", "/api/automations/nightly-quiet", &Value::Null).await;
        assert_eq!(status, 200, "{renamed}");
        assert_eq!(renamed["id"], id.as_str(), "the rename made another automation");
        let mut actions = entered()["actions"].as_array().unwrap().clone();
        actions.reverse();
        actions[1] = json!({"pause-deployment": {"deployment": "etl/b"}});
        assert_eq!(renamed["actions"], Value::Array(actions), "{renamed:#}");
        assert_eq!(renamed["trigger"], entered()["trigger"]);
        let (status, _) = http.json("GET", "/api/automations/nightly-watch", &Value::Null).await;
        assert_eq!(status, 404, "the old name is still there");
        let (_, all) = http.json("GET", "/api/automations", &Value::Null).await;
        assert_eq!(all.as_array().map(Vec::len), Some(1), "{all:#}");

        // A new one made of pasted YAML: the form takes it.
        browser.click(Locator::LinkText("New automation")).await;
        wait_path(&browser, "/automations/new").await;
        browser.fill("#automation-yaml", PASTED).await;
        browser.click(Locator::Css("button.use-yaml")).await;
        let started = Instant::now();
        while value(&browser, "#automation-name").await != "fail-stuck" {
            assert!(started.elapsed() < Duration::from_secs(20), "the form did not take the YAML");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(value(&browser, "#automation-trigger").await, "\"reactive\"");
        assert_eq!(value(&browser, "#automation-resource").await, "run/*");
        assert_eq!(value(&browser, "#automation-within").await, "2h");
        assert_eq!(value(&browser, "#action-0-kind").await, "\"change-run-state\"");
        assert_eq!(value(&browser, "#action-0-state").await, "\"FAILED\"");
        assert_eq!(value(&browser, "#action-0-message").await, "stuck");
        assert_eq!(value(&browser, "#action-1-pool").await, "edge");

        // Broken YAML is named, and the form keeps what it had.
        browser.fill("#automation-yaml", "name: [").await;
        browser.click(Locator::Css("#automation-description")).await;
        browser.wait_text("#automation-yaml-error", "not YAML").await;
        assert_eq!(value(&browser, "#automation-name").await, "fail-stuck");
        assert!(!problem_and_save(&browser).await.1, "Save beside YAML the form has not taken");
        browser.click(Locator::XPath("//button[text()=\"Back to the form's YAML\"]")).await;
        let pasted = AutomationSpec::from_yaml(PASTED).unwrap();
        wait_yaml(&browser, &pasted).await;
        browser.click(Locator::Css("form.automation-form button[type=submit]")).await;
        wait_path(&browser, "/automations").await;
        let (status, saved) = http.json("GET", "/api/automations/fail-stuck", &Value::Null).await;
        assert_eq!(status, 200, "{saved}");
        let saved: AutomationSpec = serde_json::from_value(json!({
            "name": saved["name"], "description": saved["description"],
            "trigger": saved["trigger"], "actions": saved["actions"],
        }))
        .unwrap();
        assert_eq!(saved, pasted);

        // A name already taken is refused on a new automation, not put
        // over the one that has it.
        browser.click(Locator::LinkText("New automation")).await;
        wait_path(&browser, "/automations/new").await;
        browser.fill("#automation-yaml", PASTED).await;
        browser.click(Locator::Css("button.use-yaml")).await;
        type_into(&browser, "#automation-description", "another").await;
        browser.click(Locator::Css("form.automation-form button[type=submit]")).await;
        browser.wait_text(".automation-form .failure", "exists already").await;
        let (_, kept) = http.json("GET", "/api/automations/fail-stuck", &Value::Null).await;
        assert_eq!(kept["description"], "Give up on runs stuck pending");
        browser.close().await;
    });
}
