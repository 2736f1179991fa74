//! A run's artifacts on its page: Markdown rendered, tables as tables,
//! links and progress as such.
//!
//! A flow's Markdown is not trusted: raw HTML in it is shown as text, and a
//! link or image is kept only if it points to an http(s) URL (or within
//! the page), so nothing a flow writes can run script in the UI.

use baton_proto::v1::{RunArtifact, RunArtifactKind, is_web_url, table_columns};
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};
use serde_json::Value;
use yew::prelude::*;

use crate::app::view::local_time;

#[derive(Properties, PartialEq)]
pub struct ArtifactsProps {
    pub artifacts: Vec<RunArtifact>,
}

#[function_component(Artifacts)]
pub fn artifacts(props: &ArtifactsProps) -> Html {
    html! {
        <div class="artifacts">
            { for props.artifacts.iter().map(|artifact| html! {
                <article class={format!("artifact {}", artifact.kind.as_str())} aria-label={format!("Artifact {}", artifact.key.as_deref().unwrap_or(artifact.kind.as_str()))}>
                    <header>
                        <strong>{ artifact.key.as_deref().unwrap_or("(no key)") }</strong>
                        <span class="muted">{ format!(" {} · {}", artifact.kind.as_str(), local_time(artifact.created_at)) }</span>
                        if let Some(description) = &artifact.description { <div class="small">{ description }</div> }
                    </header>
                    { content(artifact.kind, &artifact.content) }
                </article>
            }) }
        </div>
    }
}

fn content(kind: RunArtifactKind, content: &Value) -> Html {
    match (kind, content) {
        (RunArtifactKind::Markdown, Value::String(text)) => {
            let html = format!("<div class=\"markdown\">{}</div>", markdown_html(text));
            Html::from_html_unchecked(AttrValue::from(html))
        }
        (RunArtifactKind::Table, Value::Array(rows)) => table(rows),
        (RunArtifactKind::Link, link) => match link["url"].as_str() {
            Some(url) if is_web_url(url) => {
                let text = link["text"].as_str().filter(|t| !t.is_empty()).unwrap_or(url);
                html! { <a href={url.to_owned()} target="_blank" rel="noopener noreferrer nofollow">{ text }</a> }
            }
            _ => html! { <span class="muted">{ "(not an http(s) link)" }</span> },
        },
        (RunArtifactKind::Progress, value) => {
            let fraction = value.as_f64().unwrap_or_default().clamp(0.0, 1.0);
            html! {
                <>
                    <progress max="1" value={fraction.to_string()}></progress>
                    <span>{ format!(" {:.0}%", fraction * 100.0) }</span>
                </>
            }
        }
        (_, other) => html! { <pre class="json">{ other.to_string() }</pre> },
    }
}

/// Rows of objects as a table whose columns are their keys.
fn table(rows: &[Value]) -> Html {
    let columns = table_columns(rows);
    let cell = |value: Option<&Value>| match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    html! {
        <table class="artifact-table">
            <thead><tr>{ for columns.iter().map(|c| html! { <th>{ *c }</th> }) }</tr></thead>
            <tbody>
                { for rows.iter().map(|row| html! {
                    <tr>{ for columns.iter().map(|c| html! { <td>{ cell(row.get(*c)) }</td> }) }</tr>
                }) }
            </tbody>
        </table>
    }
}

/// `url` if a link may point there: http(s), or within the page.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    if is_web_url(&url) || url.starts_with('#') { url } else { CowStr::Borrowed("#") }
}

/// Markdown as HTML, with raw HTML turned into text and links and images
/// to anything but http(s) (or `#` within the page) turned into `#`.
pub fn markdown_html(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Link { link_type, dest_url: safe_url(dest_url), title, id })
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Image { link_type, dest_url: safe_url(dest_url), title, id })
        }
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}
