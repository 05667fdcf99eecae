//! TLS origination: a DestinationRule whose `tls` (or the `portLevelSettings`
//! entry for the port) says SIMPLE or MUTUAL makes the proxy speak TLS to
//! the destination, whatever the client sent.

use std::{collections::HashMap, sync::{Arc, Mutex}};

use rustls::ClientConfig;

use crate::{
    config::{
        Snapshot,
        resources::destination_rule::{ClientTls, ClientTlsMode},
    },
    reload::ActiveConfig,
    tls::{OriginationSettings, origination_config},
};

/// The client config and the server name to present.
pub type Origination = (Arc<ClientConfig>, String);

/// Client configs built once per (configuration generation, host, port).
#[derive(Default)]
pub struct Originations {
    built: Mutex<HashMap<(u64, String, u16), Result<Option<Origination>, String>>>,
}

impl Originations {
    /// `Ok(None)`: plain. `Err`: the rule's TLS files do not load; the
    /// request fails rather than going out in clear.
    pub fn for_destination(&self, active: &ActiveConfig, namespace: &str, host: &str, port: u16) -> Result<Option<Origination>, String> {
        let key = (active.generation, host.to_string(), port);
        if let Some(found) = self.built.lock().expect("originations lock").get(&key) {
            return found.clone();
        }
        let built = match client_tls(&active.snapshot, namespace, host, port) {
            None => Ok(None),
            Some(tls) => {
                let settings = settings(&tls);
                let name = settings.server_name(host).to_string();
                origination_config(&settings).map(|cfg| Some((cfg, name))).map_err(|e| e.to_string())
            }
        };
        self.built.lock().expect("originations lock").insert(key, built.clone());
        built
    }
}

/// The DestinationRule TLS settings for `host:port`, SIMPLE or MUTUAL only.
fn client_tls(snapshot: &Snapshot, namespace: &str, host: &str, port: u16) -> Option<ClientTls> {
    let policy = snapshot.destination_rule_for(host, namespace)?.traffic_policy.as_ref()?;
    let tls = policy
        .port_level_settings
        .iter()
        .find(|p| p.port == Some(port))
        .and_then(|p| p.tls.clone())
        .or_else(|| policy.tls.clone())?;
    matches!(tls.mode, ClientTlsMode::Simple | ClientTlsMode::Mutual).then_some(tls)
}

fn settings(tls: &ClientTls) -> OriginationSettings {
    OriginationSettings {
        mutual: tls.mode == ClientTlsMode::Mutual,
        sni: tls.sni.clone(),
        ca_certificates: tls.ca_certificates.clone(),
        subject_alt_names: tls.subject_alt_names.clone(),
        client_certificate: tls.client_certificate.clone(),
        private_key: tls.private_key.clone(),
        insecure_skip_verify: tls.insecure_skip_verify.unwrap_or(false),
        alpn: vec![b"http/1.1".to_vec()],
    }
}
