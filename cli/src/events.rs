//! `baton event ls|watch|emit` and `baton webhook create|ls|delete`.

use std::process::ExitCode;

use anyhow::Context;
use baton_proto::v1::{EmitEvent, Event, Webhook, WebhookSpec};
use clap::Subcommand;

use crate::client::{Client, segment};
use crate::table;

#[derive(Subcommand)]
pub enum EventCommand {
    /// List events, newest first.
    Ls {
        /// Only names matching this (`*` for any characters: `run.*`).
        #[arg(long)]
        name: Option<String>,
        /// Only events about this resource (`run/ID`, `deployment/FLOW/NAME`).
        #[arg(long)]
        resource: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print events as they happen, until Ctrl-C.
    Watch {
        /// Only names matching this (`*` for any characters: `run.*`).
        #[arg(long)]
        name: Option<String>,
        /// Only events about this resource (`run/ID`, `deployment/FLOW/NAME`).
        #[arg(long)]
        resource: Option<String>,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Record an event.
    Emit {
        name: String,
        /// What it is about (default `api`).
        #[arg(long)]
        resource: Option<String>,
        /// Related resources. Repeatable.
        #[arg(long)]
        related: Vec<String>,
        /// Its payload, as JSON.
        #[arg(long, value_name = "JSON")]
        payload: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Create an incoming webhook: `POST /hooks/SLUG` on the core becomes an
    /// event.
    Create {
        /// The hook's name in its URL, `/hooks/SLUG`.
        #[arg(long)]
        slug: String,
        /// Callers must sign the body: header `X-Baton-Signature:
        /// sha256=<hex HMAC-SHA256 of the body>`.
        #[arg(long, env = "BATON_WEBHOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// The name of the events it makes (default `webhook.SLUG`).
        #[arg(long)]
        event: Option<String>,
    },
    /// List webhooks.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    Delete {
        slug: String,
    },
}

fn query(pairs: &[(&str, &Option<String>)]) -> String {
    pairs
        .iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| format!("{key}={}", segment(v))))
        .collect::<Vec<_>>()
        .join("&")
}

fn line(event: &Event) -> String {
    format!(
        "{}  {:<28} {:<40} {}",
        table::time(event.occurred),
        event.name,
        event.resource,
        if event.payload.is_null() { String::new() } else { event.payload.to_string() }
    )
}

pub async fn run(command: EventCommand) -> anyhow::Result<ExitCode> {
    let client = Client::from_env();
    match command {
        EventCommand::Ls { name, resource, limit, json } => {
            let path = format!(
                "/api/events?limit={limit}&{}",
                query(&[("name", &name), ("resource", &resource)])
            );
            let events: Vec<Event> = client.get(&path).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&events)?);
            } else {
                let rows: Vec<Vec<String>> = events
                    .iter()
                    .map(|e| {
                        vec![
                            table::time(e.occurred),
                            e.name.clone(),
                            e.resource.clone(),
                            if e.payload.is_null() { "-".into() } else { e.payload.to_string() },
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table::render(&["OCCURRED (UTC)", "NAME", "RESOURCE", "PAYLOAD"], &rows)
                );
            }
        }
        EventCommand::Watch { name, resource, json } => {
            let path = format!(
                "/api/events/stream?{}",
                query(&[("name", &name), ("resource", &resource)])
            );
            let mut response = client.open(&path).await?;
            let mut pending = String::new();
            while let Some(chunk) = response.chunk().await.context("reading the event stream")? {
                pending.push_str(&String::from_utf8_lossy(&chunk));
                // Server-sent events end with a blank line.
                while let Some(end) = pending.find("\n\n") {
                    let message: String = pending.drain(..end + 2).collect();
                    let kind =
                        message.lines().find_map(|l| l.strip_prefix("event:")).map(str::trim);
                    let data = message.lines().find_map(|l| l.strip_prefix("data:")).map(str::trim);
                    match (kind, data) {
                        (Some("event"), Some(data)) => {
                            let event: Event = serde_json::from_str(data)
                                .context("the core sent an event this CLI cannot read")?;
                            if json {
                                println!("{}", serde_json::to_string(&event)?);
                            } else {
                                println!("{}", line(&event));
                            }
                        }
                        (Some("lagged"), Some(missed)) => {
                            eprintln!("warning: {missed} events went by too fast to show");
                        }
                        _ => {}
                    }
                }
            }
            anyhow::bail!("the core closed the event stream");
        }
        EventCommand::Emit { name, resource, related, payload } => {
            let payload = match payload {
                Some(text) => serde_json::from_str(&text).context("--payload is not valid JSON")?,
                None => serde_json::Value::Null,
            };
            let event: Event =
                client.post("/api/events", &EmitEvent { name, resource, related, payload }).await?;
            println!("{}", event.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn webhook(command: WebhookCommand) -> anyhow::Result<ExitCode> {
    let client = Client::from_env();
    let rows = |hooks: &[Webhook]| -> Vec<Vec<String>> {
        hooks
            .iter()
            .map(|h| {
                vec![
                    h.slug.clone(),
                    h.path.clone(),
                    h.event.clone(),
                    if h.signed { "yes".into() } else { "no".into() },
                ]
            })
            .collect()
    };
    const HEADERS: [&str; 4] = ["SLUG", "PATH", "EVENT", "SIGNED"];
    match command {
        WebhookCommand::Create { slug, secret, event } => {
            let hook: Webhook =
                client.post("/api/webhooks", &WebhookSpec { slug, secret, event }).await?;
            print!("{}", table::render(&HEADERS, &rows(std::slice::from_ref(&hook))));
        }
        WebhookCommand::Ls { json } => {
            let hooks: Vec<Webhook> = client.get("/api/webhooks").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&hooks)?);
            } else {
                print!("{}", table::render(&HEADERS, &rows(&hooks)));
            }
        }
        WebhookCommand::Delete { slug } => {
            client.delete(&format!("/api/webhooks/{}", segment(&slug))).await?;
            println!("deleted webhook {slug}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
