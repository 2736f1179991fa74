//! The desktop app in a real window: started under a virtual X display
//! (Xvfb) with an empty data directory and nothing else running, it starts
//! its embedded core and agent, deploys the examples and shows the
//! dashboard; the screenshot, read back by OCR, must show the UI.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Xvfb on a display it chooses itself (`-displayfd`), and that display.
fn virtual_display() -> (Killed, String) {
    let mut xvfb = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb (Debian's xvfb; `cargo xtask test` installs it)");
    let mut line = String::new();
    BufReader::new(xvfb.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let display = format!(":{}", line.trim());
    assert_ne!(display, ":", "Xvfb did not say which display it took");
    (Killed(xvfb), display)
}

fn ocr(display: &str, shot: &std::path::Path) -> String {
    let taken = Command::new("import")
        .args(["-display", display, "-window", "root"])
        .arg(shot)
        .status()
        .is_ok_and(|s| s.success());
    if !taken {
        return String::new();
    }
    let read = Command::new("tesseract").arg(shot).arg("stdout").stderr(Stdio::null()).output();
    read.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts the app on `display` with `data` as its data directory; returns
/// it and the URL its window shows.
fn launch(display: &str, data: &std::path::Path, args: &[&str]) -> (Killed, String) {
    let mut app = Command::new(env!("CARGO_BIN_EXE_baton-desktop"))
        .args(args)
        .env("DISPLAY", display)
        .env("BATON_DESKTOP_DATA", data)
        // Software rendering: there is no GPU behind a virtual display.
        .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(app.stdout.take().unwrap());
    let app = Killed(app);
    let url = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("Baton UI at ").map(str::to_owned))
        .expect("the app never said where its UI is");
    (app, url)
}

#[test]
fn the_desktop_app_shows_a_working_dashboard_from_its_embedded_core() {
    let (_xvfb, display) = virtual_display();
    let data = tempfile::tempdir().unwrap();
    let (_app, url) = launch(&display, data.path(), &[]);
    // The embedded system works: examples deployed, the agent connected,
    // and a run of the example goes through it.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| -> Value {
        runtime.block_on(async {
            let mut request = http.request(method, format!("{url}{path}"));
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            assert!(status.is_success(), "{path}: {status}: {text}");
            serde_json::from_str(&text).unwrap()
        })
    };
    let get = |path: &str| call(reqwest::Method::GET, path, None);
    wait_until("the examples are deployed", Duration::from_secs(60), || {
        let deployments = get("/api/deployments");
        let names: Vec<String> = deployments
            .as_array()
            .unwrap()
            .iter()
            .map(|d| format!("{}/{}", d["flow"].as_str().unwrap(), d["name"].as_str().unwrap()))
            .collect();
        names.contains(&"hello/default".to_owned()) && names.contains(&"etl/nightly".to_owned())
    });
    wait_until("the embedded agent connects", Duration::from_secs(30), || {
        get("/api/agents").as_array().unwrap().iter().any(|a| a["connected"] == true)
    });
    let run = call(
        reqwest::Method::POST,
        "/api/deployments/hello/default/runs",
        Some(serde_json::json!({"parameters": {"b": 41}})),
    );
    let id = run["id"].as_str().unwrap().to_owned();
    wait_until("the example run completes", Duration::from_secs(60), || {
        get(&format!("/api/runs/{id}"))["state"] == "COMPLETED"
    });
    assert_eq!(get(&format!("/api/runs/{id}"))["output"], 42);

    // The window shows the dashboard: its words are on the screen.
    let shot = data.path().join("screenshot.png");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = ocr(&display, &shot);
        if ["Dashboard", "Deployments", "Work pools", "Runs in the last 24 hours"]
            .iter()
            .all(|word| text.contains(word))
        {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    // Kept beside the binary for a person to look at.
    let kept = std::path::Path::new(env!("CARGO_BIN_EXE_baton-desktop"))
        .with_file_name("desktop-screenshot.png");
    let _ = std::fs::copy(&shot, &kept);
    for word in ["Dashboard", "Deployments", "Work pools", "Runs in the last 24 hours"] {
        assert!(
            text.contains(word),
            "the window does not show {word:?} (screenshot: {}); OCR read:\n{text}",
            kept.display()
        );
    }

    // A second app, told to use that core instead of its own: it starts
    // none, shows that core's UI, and remembers the choice.
    let remote = tempfile::tempdir().unwrap();
    let (mut second, shown) = launch(&display, remote.path(), &["--core", &url, "--token", "t0k"]);
    assert_eq!(shown, url);
    std::thread::sleep(Duration::from_secs(2));
    assert!(second.0.try_wait().unwrap().is_none(), "the remote-mode app exited");
    assert!(!remote.path().join("core").exists(), "the remote-mode app started a core of its own");
    let saved = std::fs::read_to_string(remote.path().join("desktop.json")).unwrap();
    let saved: Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(saved["core"]["url"], url.as_str());
    assert_eq!(saved["core"]["token"], "t0k");
}
