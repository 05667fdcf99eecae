//! WATCH: a chunked stream of `{"type":…,"object":…}` lines. It replays the history after the
//! requested resourceVersion, then follows writes as they happen; sends BOOKMARKs periodically
//! (and on demand) when the client allows them; answers a compacted version with an `ERROR` event
//! carrying a 410 `Expired` Status; turns an object leaving the selection into DELETED and one
//! entering it into ADDED; and ends at `timeoutSeconds`, on `end_watches`, or on stop.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::list::{Selection, parse_rv};
use super::meta_only;
use super::resources::ResourceType;
use super::selectors::FieldSelector;
use super::shared::Shared;
use super::status::ApiError;
use super::store::{Change, Store};
use super::wire::{Chunked, Request};

/// What the real server does without `timeoutSeconds` (it picks 30 to 60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// A validated watch request.
pub struct WatchPlan {
    rt: &'static ResourceType,
    selection: Selection,
    /// `None`: start with the current objects as ADDED events (resourceVersion unset or "0").
    after: Option<u64>,
    bookmarks: bool,
    /// `sendInitialEvents=true`: the current objects, then a bookmark marking their end.
    initial_events: bool,
    timeout: Duration,
    /// Objects go out as `PartialObjectMetadata`.
    metadata_only: bool,
}

impl WatchPlan {
    /// Checks a watch request's parameters; errors are answered before the stream starts.
    pub fn parse(
        store: &Store,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: Option<&str>,
        req: &Request,
    ) -> Result<WatchPlan, ApiError> {
        let mut selection = Selection::parse(rt, namespace, req)?;
        if let Some(name) = name {
            selection.fields = std::mem::take(&mut selection.fields).and(FieldSelector::name(name));
        }
        let initial_events = req.flag("sendInitialEvents");
        let bookmarks = req.flag("allowWatchBookmarks");
        match req.param("resourceVersionMatch").filter(|m| !m.is_empty()) {
            None if initial_events => {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            Some("NotOlderThan") if initial_events => {}
            None => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Forbidden: {other:?} is not allowed for watch without sendInitialEvents=true"
                )));
            }
        }
        if initial_events && !bookmarks {
            return Err(ApiError::bad_request(
                "allowWatchBookmarks: Forbidden: sendInitialEvents requires allowWatchBookmarks=true",
            ));
        }
        let after = match req
            .param("resourceVersion")
            .filter(|v| !v.is_empty() && *v != "0")
        {
            None => None,
            Some(text) => {
                let rv = parse_rv(text)?;
                if rv > store.rv() {
                    return Err(ApiError::too_large_resource_version(rv, store.rv()));
                }
                Some(rv)
            }
        };
        let timeout = match req.param("timeoutSeconds") {
            Some(t) => t.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("timeoutSeconds: Invalid value: {t:?}"))
            })?,
            None => 0,
        };
        let timeout = if timeout == 0 {
            DEFAULT_TIMEOUT
        } else {
            Duration::from_secs(timeout)
        };
        // Streaming lists start from the current state whatever version they name.
        let after = if initial_events { None } else { after };
        Ok(WatchPlan {
            rt,
            selection,
            after,
            bookmarks,
            initial_events,
            timeout,
            metadata_only: false,
        })
    }
}

impl WatchPlan {
    pub fn metadata_only(self) -> WatchPlan {
        WatchPlan {
            metadata_only: true,
            ..self
        }
    }
}

/// What the watch does next.
enum Step {
    Events(Vec<(&'static str, Value)>),
    Bookmark(u64),
    Gone(ApiError),
    End,
}

/// Streams the watch to `w` until it ends; an error means the connection is gone.
pub fn run(shared: &Shared, plan: WatchPlan, w: &mut impl Write) -> io::Result<()> {
    let rt = plan.rt;
    let deadline = Instant::now() + plan.timeout;
    let mut out = Chunked::start(w, "application/json")?;
    let (mut cursor, initial, epoch, mut bookmark_epoch) = {
        let store = shared.store();
        let initial = match plan.after {
            Some(_) => Vec::new(),
            None => store.snapshot(rt, None).unwrap_or_default(),
        };
        (
            plan.after.unwrap_or(store.rv()),
            initial,
            store.watch_epoch,
            store.bookmark_epoch,
        )
    };
    let meta = plan.metadata_only;
    for object in initial.into_iter().filter(|o| plan.selection.matches(o)) {
        send(&mut out, "ADDED", object, meta)?;
    }
    if plan.initial_events {
        send(&mut out, "BOOKMARK", bookmark(rt, cursor, true), meta)?;
    }
    let mut next_bookmark = Instant::now() + shared.bookmark_interval;
    loop {
        let step = {
            let mut store = shared.store();
            loop {
                if cursor < store.compacted() {
                    break Step::Gone(ApiError::expired(cursor, store.compacted()));
                }
                if store.rv() > cursor {
                    let changes = store.changes_after(rt, cursor).unwrap_or_default();
                    cursor = store.rv();
                    let events: Vec<(&str, Value)> = changes
                        .iter()
                        .filter_map(|c| event_for(c, &plan.selection))
                        .collect();
                    if !events.is_empty() {
                        break Step::Events(events);
                    }
                }
                let now = Instant::now();
                if plan.bookmarks
                    && (store.bookmark_epoch != bookmark_epoch || now >= next_bookmark)
                {
                    bookmark_epoch = store.bookmark_epoch;
                    next_bookmark = now + shared.bookmark_interval;
                    break Step::Bookmark(cursor);
                }
                if store.watch_epoch != epoch || !store.serves(rt) || now >= deadline {
                    break Step::End;
                }
                let wake = if plan.bookmarks {
                    next_bookmark.min(deadline)
                } else {
                    deadline
                };
                store = shared.wait(store, wake.saturating_duration_since(now));
            }
        };
        match step {
            Step::Events(events) => {
                for (kind, object) in events {
                    send(&mut out, kind, object, meta)?;
                }
            }
            Step::Bookmark(rv) => send(&mut out, "BOOKMARK", bookmark(rt, rv, false), meta)?,
            Step::Gone(error) => {
                send(&mut out, "ERROR", error.to_status(), false)?;
                return out.finish();
            }
            Step::End => return out.finish(),
        }
    }
}

/// The event a change makes for a watch with `selection`, if any.
fn event_for(change: &Change, selection: &Selection) -> Option<(&'static str, Value)> {
    let was_in = change.old.as_ref().is_some_and(|o| selection.matches(o));
    let (kind, object) = match &change.new {
        Some(new) => match (was_in, selection.matches(new)) {
            (false, true) => ("ADDED", new.clone()),
            (true, true) => ("MODIFIED", new.clone()),
            (true, false) => ("DELETED", new.clone()), // left the selection
            (false, false) => return None,
        },
        None if was_in => {
            let mut gone = change.old.clone().expect("a deletion has the old object");
            gone["metadata"]["resourceVersion"] = json!(change.rv.to_string());
            ("DELETED", gone)
        }
        None => return None,
    };
    Some((kind, object))
}

fn bookmark(rt: &ResourceType, rv: u64, initial_end: bool) -> Value {
    let mut metadata = json!({ "resourceVersion": rv.to_string(), "creationTimestamp": null });
    if initial_end {
        metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    json!({ "kind": rt.kind, "apiVersion": rt.api_version(), "metadata": metadata })
}

/// One event line; `metadata_only` reduces the object to `PartialObjectMetadata`.
fn send(
    out: &mut Chunked<'_, impl Write>,
    kind: &str,
    object: Value,
    metadata_only: bool,
) -> io::Result<()> {
    let object = if metadata_only {
        meta_only::reduce(object)
    } else {
        object
    };
    let mut line = serde_json::to_vec(&json!({ "type": kind, "object": object }))
        .expect("a JSON value serialises");
    line.push(b'\n');
    out.send(&line)
}
