//! The Baton desktop app: the web UI in a Tauri window.
//!
//! With nothing configured it starts a core and one agent inside this
//! process, on SQLite in the app's data directory, and deploys the example
//! flows, so a new user sees a working system at once. Given a core's URL
//! (and token) it is a window on that core instead. A tray icon shows
//! whether runs failed in the last hour, and a failed run of a watched
//! deployment raises a notification.
//!
//! `baton-desktop [--core URL [--token TOKEN] | --embedded]`; the choice is
//! remembered in `desktop.json` in the data directory
//! (`$BATON_DESKTOP_DATA`, or the platform's app data directory).

#![cfg_attr(not(test), windows_subsystem = "windows")]

mod config;
mod embedded;
mod watch;

use anyhow::Context as _;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{Manager, WebviewUrl, WebviewWindowBuilder};

use config::{Choice, DesktopConfig};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,baton_core=info".into()),
        )
        .init();
    let choice = Choice::from_args(std::env::args().skip(1))?;
    tauri::Builder::default()
        .plugin(tauri_plugin_notification::init())
        .setup(move |app| {
            setup(app, choice.clone()).map_err(|error| {
                tracing::error!("{error:#}");
                error.into()
            })
        })
        .run(tauri::generate_context!())
        .context("running the desktop app")
}

fn setup(app: &mut tauri::App, choice: Choice) -> anyhow::Result<()> {
    let data = match std::env::var_os("BATON_DESKTOP_DATA") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => app.path().app_data_dir().context("finding the app's data directory")?,
    };
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let config = DesktopConfig::load(&data)?.choose(choice);
    config.save(&data)?;
    let (url, token) = match &config.core {
        Some(remote) => (remote.url.clone(), remote.token.clone()),
        None => {
            let system = tauri::async_runtime::block_on(embedded::start(&data))?;
            let url = system.url.clone();
            app.manage(system);
            (url, None)
        }
    };
    // Printed for scripts and tests that drive the app.
    println!("Baton UI at {url}");

    let mut window = WebviewWindowBuilder::new(
        app,
        "main",
        WebviewUrl::External(url.parse().with_context(|| format!("the core URL {url}"))?),
    )
    .title("Baton")
    .inner_size(1280.0, 800.0)
    .min_inner_size(380.0, 500.0);
    if let Some(token) = &token {
        // The UI reads the API token from local storage.
        let token = serde_json::to_string(token)?;
        window = window.initialization_script(format!(
            "try {{ localStorage.setItem('baton.api_token', {token}); }} catch (e) {{}}"
        ));
    }
    window.build().context("opening the window")?;

    let open = MenuItem::with_id(app, "open", "Open Baton", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&open, &quit])?;
    let tray = TrayIconBuilder::with_id("status")
        .icon(watch::icon(false)?)
        .tooltip("Baton")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "open" => {
                if let Some(window) = app.get_webview_window("main") {
                    let _ = window.show();
                    let _ = window.set_focus();
                }
            }
            "quit" => app.exit(0),
            _ => {}
        })
        .build(app)?;
    tauri::async_runtime::spawn(watch::run(app.handle().clone(), tray, url, token, config.watch));
    Ok(())
}
