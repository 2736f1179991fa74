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
        let mut newest = seen_until;
        for run in &page.items {
            let at = run.ended_at.unwrap_or(run.state_changed_at).0;
            newest = newest.max(at);
            if at <= seen_until || !watch.iter().any(|p| name_matches(p, &run.deployment)) {
                continue;
            }
            let body = match &run.state_message {
                Some(message) => format!("{} {}: {message}", run.deployment, run.state.as_str()),
                None => format!("{} {}", run.deployment, run.state.as_str()),
            };
            let _ = app.notification().builder().title("A Baton run failed").body(body).show();
        }
        seen_until = newest;
    }
}
