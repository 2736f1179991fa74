//! Real headless Chromium, driven through chromedriver (Debian's
//! `chromium` and `chromium-driver`, which `cargo xtask test` installs),
//! for the UI's tests and benchmarks.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a browser that cannot start fails the test"
)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// chromedriver and a headless Chromium session; both end when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and a fresh headless session.
    pub async fn start() -> Self {
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
    pub async fn wait_text(&self, css: &str, wanted: &str) -> String {
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

    /// Clicks the element, once it exists (within 20 s).
    pub async fn click(&self, locator: Locator<'_>) {
        let element =
            self.client.wait().at_most(Duration::from_secs(20)).for_element(locator).await.unwrap();
        element.click().await.unwrap();
    }

    /// Replaces the text of the field matching `css`.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.cleared(css).await;
        field.send_keys(value).await.unwrap();
    }

    /// Replaces the text of the field matching `css` one key at a time, as
    /// a person types while the page may re-render between keys, and
    /// returns what the field then holds.
    pub async fn type_keys(&self, css: &str, text: &str) -> String {
        let field = self.cleared(css).await;
        for key in text.chars() {
            field.send_keys(&key.to_string()).await.unwrap();
        }
        field.prop("value").await.unwrap().unwrap_or_default()
    }

    /// The field matching `css`, once it exists (within 20 s), emptied.
    async fn cleared(&self, css: &str) -> fantoccini::elements::Element {
        let field = self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap();
        field.clear().await.unwrap();
        field
    }

    /// The `href` of the element `locator` finds now (`None` without one).
    pub async fn href(&self, locator: Locator<'_>) -> Option<String> {
        self.client.find(locator).await.unwrap().attr("href").await.unwrap()
    }

    /// The path of the page shown.
    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    pub async fn close(mut self) {
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
