//! Findings about resources from the API server, written back as
//! Kubernetes Events on the resource itself (`kubectl describe` shows them),
//! once per distinct finding.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::Mutex,
};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client,
    runtime::events::{Event, EventType, Recorder, Reporter},
};

use crate::config::{Finding, Severity};

pub struct FindingEvents {
    recorder: Recorder,
    published: Mutex<HashSet<(PathBuf, String)>>,
}

impl FindingEvents {
    pub fn new(client: Client, instance: &str) -> Self {
        let reporter = Reporter { controller: "gateway".into(), instance: Some(instance.to_string()) };
        Self { recorder: Recorder::new(client, reporter), published: Mutex::default() }
    }

    /// Publishes each finding not yet published, on the object its document came from.
    pub async fn publish(&self, findings: &[Finding], objects: &HashMap<PathBuf, ObjectReference>) {
        for f in findings {
            let Some(object) = objects.get(&f.file) else { continue };
            let key = (f.file.clone(), format!("{}|{}|{}", f.code, f.field, f.message));
            if !self.published.lock().expect("events lock").insert(key) {
                continue;
            }
            let (type_, action) = match f.severity {
                Severity::Error => (EventType::Warning, "Rejected"),
                _ => (EventType::Warning, "Accepted"),
            };
            let field = if f.field.is_empty() { String::new() } else { format!(" at {}", f.field) };
            let event = Event {
                type_,
                reason: f.code.to_string(),
                note: Some(truncate(&format!("{}{field}: {}", f.code, f.message), 1000)),
                action: action.into(),
                secondary: None,
            };
            if let Err(e) = self.recorder.publish(&event, object).await {
                tracing::warn!(error = %e, object = ?object.name, "cannot write an Event");
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
