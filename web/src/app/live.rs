//! Live updates: the core's event stream (server-sent events) and timers.

use std::cell::RefCell;
use std::rc::Rc;

use baton_proto::v1::{Event, LogLine};
use gloo_timers::callback::Interval;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use yew::prelude::*;

use super::api;

/// Calls `on_event` with each new event whose name matches `name` (a
/// pattern, `*` anywhere) and, if given, whose resource matches `resource`.
/// The browser reconnects a dropped stream by itself.
#[hook]
pub fn use_events(name: String, resource: Option<String>, on_event: Callback<Event>) {
    // The newest callback, without re-subscribing on every render.
    let latest = use_mut_ref(|| on_event.clone());
    *latest.borrow_mut() = on_event;
    use_effect_with((name, resource), move |(name, resource)| {
        let mut url = format!("/api/events/stream?name={}", api::escape(name));
        if let Some(resource) = resource {
            url.push_str(&format!("&resource={}", api::escape(resource)));
        }
        if let Some(token) = api::token() {
            url.push_str(&format!("&token={}", api::escape(&token)));
        }
        let source = web_sys::EventSource::new(&url).ok();
        let listener = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |message: web_sys::MessageEvent| {
                let Some(data) = message.data().as_string() else { return };
                if let Ok(event) = serde_json::from_str::<Event>(&data) {
                    let callback = latest.borrow().clone();
                    callback.emit(event);
                }
            },
        );
        if let Some(source) = &source {
            let _ =
                source.add_event_listener_with_callback("event", listener.as_ref().unchecked_ref());
        }
        move || {
            if let Some(source) = source {
                source.close();
            }
            drop(listener);
        }
    });
}

/// A number that grows by one every `millis` while `running`: a page passes
/// it as the refresh of a read to poll.
#[hook]
pub fn use_ticks(millis: u32, running: bool) -> u64 {
    let ticks = use_state(|| 0u64);
    let counter = use_mut_ref(|| 0u64);
    {
        let ticks = ticks.clone();
        use_effect_with((millis, running), move |(millis, running)| {
            let interval = running.then(|| {
                Interval::new(*millis, move || {
                    *counter.borrow_mut() += 1;
                    ticks.set(*counter.borrow());
                })
            });
            move || drop(interval)
        });
    }
    *ticks
}

/// Events collected between renders: a busy stream (a thousand a second)
/// costs one render per flush, not one per event.
#[derive(Default)]
pub struct Batch {
    pending: RefCell<Vec<Event>>,
}

impl Batch {
    pub fn push(&self, event: Event) {
        self.pending.borrow_mut().push(event);
    }

    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.pending.borrow_mut())
    }
}

/// A batch kept across renders and the callback that fills it.
#[hook]
pub fn use_batch() -> (Rc<Batch>, Callback<Event>) {
    let batch = use_memo((), |()| Batch::default());
    let push = {
        let batch = batch.clone();
        Callback::from(move |event| batch.push(event))
    };
    (batch, push)
}

/// A refresh counter for a page that shows what events matching `name`
/// (and `resource`) change: it grows at most once every `millis` while such
/// events come, and after `idle` quiet periods anyway.
#[hook]
pub fn use_live_refresh(name: String, resource: Option<String>, millis: u32, idle: u64) -> u64 {
    let (batch, push) = use_batch();
    use_events(name, resource, push);
    let ticks = use_ticks(millis, true);
    let state = use_mut_ref(|| (0u64, 0u64));
    let mut state = state.borrow_mut();
    let (refresh, last) = &mut *state;
    if !batch.take().is_empty() || ticks >= *last + idle {
        *refresh += 1;
        *last = ticks;
    }
    *refresh
}

/// A run's log lines as the core streams them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLog {
    pub lines: Vec<LogLine>,
    /// The run has ended and every line has come.
    pub ended: bool,
}

pub enum RunLogChange {
    /// Another run's log from now on: nothing of the last one stays.
    Restart,
    Append(Vec<LogLine>),
    End,
}

impl Reducible for RunLog {
    type Action = RunLogChange;

    fn reduce(self: Rc<Self>, change: RunLogChange) -> Rc<Self> {
        let mut next = (*self).clone();
        match change {
            RunLogChange::Append(lines) => {
                // A reconnected stream may repeat a batch.
                let last = next.lines.last().map_or(0, LogLine::position);
                next.lines.extend(lines.into_iter().filter(|l| l.position() > last));
            }
            RunLogChange::End => next.ended = true,
            RunLogChange::Restart => next = RunLog::default(),
        }
        Rc::new(next)
    }
}

/// Follows `/api/runs/{id}/logs/stream`: lines as they are written, until
/// the run has ended.
#[hook]
pub fn use_run_log(id: String) -> UseReducerHandle<RunLog> {
    let log = use_reducer(RunLog::default);
    let dispatcher = log.dispatcher();
    use_effect_with(id, move |id| {
        // Given another run (the run page is keyed by its run, but a
        // component that is not may be), the last run's lines must go.
        dispatcher.dispatch(RunLogChange::Restart);
        let mut url = format!("/api/runs/{}/logs/stream", api::escape(id));
        if let Some(token) = api::token() {
            url.push_str(&format!("?token={}", api::escape(&token)));
        }
        let source = web_sys::EventSource::new(&url).ok();
        let on_lines = {
            let dispatcher = dispatcher.clone();
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
                move |message: web_sys::MessageEvent| {
                    let lines =
                        message.data().as_string().and_then(|d| serde_json::from_str(&d).ok());
                    if let Some(lines) = lines {
                        dispatcher.dispatch(RunLogChange::Append(lines));
                    }
                },
            )
        };
        let on_end = {
            let source = source.clone();
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_: web_sys::MessageEvent| {
                // Closed, or the browser would reconnect and wait again.
                if let Some(source) = &source {
                    source.close();
                }
                dispatcher.dispatch(RunLogChange::End);
            })
        };
        if let Some(source) = &source {
            let _ =
                source.add_event_listener_with_callback("logs", on_lines.as_ref().unchecked_ref());
            let _ = source.add_event_listener_with_callback("end", on_end.as_ref().unchecked_ref());
        }
        move || {
            if let Some(source) = source {
                source.close();
            }
            drop((on_lines, on_end));
        }
    });
    log
}
