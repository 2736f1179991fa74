//! The tray icon's state and notifications: every few seconds the app asks
//! the core for runs that failed or crashed since it last looked.

use std::time::Duration;

use baton_core::feed::name_matches;
use baton_proto::v1::{FlowRun, Page};
use tauri::AppHandle;
use tauri::image::Image;
use tauri::tray::TrayIcon;
use tauri_plugin_notification::NotificationExt as _;

const EVERY: Duration = Duration::from_secs(5);
const HOUR: i64 = 3_600_000;

pub fn icon(failed: bool) -> tauri::Result<Image<'static>> {
    if failed {
        Image::from_bytes(include_bytes!("../icons/tray-failed.png"))
    } else {
        Image::from_bytes(include_bytes!("../icons/tray.png"))
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub async fn run(
    app: AppHandle,
    tray: TrayIcon,
    url: String,
    token: Option<String>,
    watch: Vec<String>,
) {
    let http = reqwest::Client::new();
    let mut seen_until = now();
    let mut failing = None;
    loop {
        tokio::time::sleep(EVERY).await;
        let path = format!("{url}/api/runs?state=FAILED,CRASHED&since={}&limit=100", now() - HOUR);
        let mut request = http.get(&path);
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let page: Page<FlowRun> = match request.send().await {
            Ok(response) if response.status().is_success() => match response.json().await {
                Ok(page) => page,
                Err(_) => continue,
            },
            _ => continue,
        };
        let failed = !page.items.is_empty();
        if failing != Some(failed) {
            failing = Some(failed);
            let _ = tray.set_icon(icon(failed).ok());
            let title = if failed {
                format!("Baton: {} failed in the last hour", page.items.len())
            } else {
                "Baton: no failures in the last hour".to_owned()
            };
            let _ = tray.set_tooltip(Some(&title));
        }
        let (told, newest) = notices(&page.items, seen_until, &watch);
        for body in told {
            let _ = app.notification().builder().title("A Baton run failed").body(body).show();
        }
        seen_until = newest;
    }
}

/// The notifications `failed` runs call for: those of watched deployments
/// that ended after `seen_until`; and the newest end seen.
fn notices(failed: &[FlowRun], seen_until: i64, watch: &[String]) -> (Vec<String>, i64) {
    let mut newest = seen_until;
    let mut notices = Vec::new();
    for run in failed {
        let at = run.ended_at.unwrap_or(run.state_changed_at).0;
        newest = newest.max(at);
        if at <= seen_until || !watch.iter().any(|p| name_matches(p, &run.deployment)) {
            continue;
        }
        notices.push(match &run.state_message {
            Some(message) => format!("{} {}: {message}", run.deployment, run.state.as_str()),
            None => format!("{} {}", run.deployment, run.state.as_str()),
        });
    }
    (notices, newest)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn failed(deployment: &str, ended: i64) -> FlowRun {
        serde_json::from_value(serde_json::json!({
            "id": format!("run-{ended}"), "flow": "f", "deployment": deployment,
            "deployment_id": "d", "parameters": {}, "state": "FAILED",
            "state_message": "boom", "state_changed_at": ended, "scheduled_at": 0,
            "ended_at": ended, "run_count": 1, "max_retries": 0, "tags": [],
            "created_at": 0, "work_pool": "default", "work_queue": "default",
        }))
        .unwrap()
    }

    #[test]
    fn a_failure_of_a_watched_deployment_is_told_once() {
        let runs =
            [failed("etl/nightly", 100), failed("hello/default", 200), failed("etl/hourly", 50)];
        let watch = vec!["etl/*".to_owned()];
        let (told, newest) = notices(&runs, 60, &watch);
        assert_eq!(told, ["etl/nightly FAILED: boom"]);
        assert_eq!(newest, 200);
        // The next look, with the same runs: nothing new.
        let (told, _) = notices(&runs, newest, &watch);
        assert!(told.is_empty());
        let (told, _) = notices(&runs, 0, &["*".to_owned()]);
        assert_eq!(told.len(), 3);
    }
}
