//! The web UI in real headless Chromium (driven through chromedriver)
//! against a real core and agent: the dashboard and navigation, a
//! deployment's Run form refusing a value the schema rejects, a run started
//! from it and followed to COMPLETED with its logs, a schedule paused and
//! resumed, a long run cancelled from its page, and deep links.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use baton_tests::System;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// chromedriver and a headless Chromium session; both end when dropped.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; `cargo xtask test` installs it)");
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--no-first-run", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            // chromedriver is plain HTTP on loopback: no TLS stack needed.
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => return Self { client, driver, _profile: profile },
                Err(error) => last = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not take a session: {last:?}");
    }

    /// The text of the first element matching `css`, once it contains
    /// `wanted` (within 20 s).
    async fn wait_text(&self, css: &str, wanted: &str) -> String {
        let mut seen = String::new();
        for _ in 0..200 {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                seen = element.text().await.unwrap_or_default();
                if seen.contains(wanted) {
                    return seen;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("`{css}` did not come to contain {wanted:?}; it says {seen:?}");
    }

    async fn click(&self, locator: Locator<'_>) {
        let element =
            self.client.wait().at_most(Duration::from_secs(20)).for_element(locator).await.unwrap();
        element.click().await.unwrap();
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

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
        browser.click(Locator::Css("form.run-form button[type=submit]")).await;
        browser.wait_text("main h1", "COMPLETED").await;
        let path = browser.path().await;
        let id = path.strip_prefix("/runs/").expect("the form leads to the run's page").to_owned();
        browser.wait_text(".logs", "printed 5 lines").await;
        browser.wait_text(".logs", "line 4").await;
        let runs = asked();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0]["id"], id.as_str());
        assert_eq!(runs[0]["parameters"]["lines"], 5);

        // A deep link opens the same page.
        client.goto(&format!("{base}/runs/{id}")).await.unwrap();
        browser.wait_text("main h1", "COMPLETED").await;
        browser.wait_text(".logs", "printed 5 lines").await;

        // A long run, cancelled from its page.
        client.goto(&format!("{base}/deployments/sleeps/long")).await.unwrap();
        browser.click(Locator::Css("form.run-form button[type=submit]")).await;
        browser.wait_text("main h1", "RUNNING").await;
        browser.click(Locator::Css("button.danger")).await;
        browser.wait_text("main h1", "CANCELLED").await;
        let runs = system.runs("sleeps/long");
        assert_eq!(runs[0]["state"], "CANCELLED");

        browser.close().await;
    });
}
