//! What the tests need around the server: a registry with fixed answers,
//! a running server, and hickory's client to query it over UDP and TCP
//! from a chosen loopback address (each one a different "workload").

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use hickory_net::{
    client::{Client, ClientHandle},
    runtime::TokioRuntimeProvider,
    tcp::TcpClientStream,
    udp::UdpClientStream,
};
use hickory_proto::{
    op::Message,
    rr::{DNSClass, Name, RData, RecordType},
};

use gateway_userspace::dns::{DnsMemory, DnsServer, DnsSettings, DnsStats, NameAnswer, NameRegistry, UnknownNames};

/// How long the client waits for one answer: far longer than the server's
/// own upstream timeout, so what the test sees is the server's answer.
pub const QUERY_BOUND: Duration = Duration::from_secs(30);

/// Answers from a fixed table, the same for every client; remembers the lookups.
#[derive(Default)]
pub struct FixedRegistry {
    names: HashMap<String, NameAnswer>,
    pub lookups: Mutex<Vec<(IpAddr, String)>>,
}

impl FixedRegistry {
    pub fn with(mut self, name: &str, addresses: &[&str], resolve: bool) -> Self {
        let addresses = addresses.iter().map(|ip| ip.parse().unwrap_or_else(|_| panic!("bad ip {ip}"))).collect();
        self.names.insert(name.to_string(), NameAnswer::Registered { addresses, resolve });
        self
    }
}

impl NameRegistry for FixedRegistry {
    fn lookup(&self, client: IpAddr, name: &str) -> NameAnswer {
        self.lookups.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((client, name.to_string()));
        self.names.get(name).cloned().unwrap_or(NameAnswer::Unregistered)
    }
}

/// A server running on 127.0.0.1 (an ephemeral port) in the current namespace.
pub struct Running {
    pub addr: SocketAddr,
    pub memory: Arc<DnsMemory>,
    pub stats: Arc<DnsStats>,
    pub registry: Arc<FixedRegistry>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(registry: FixedRegistry, upstreams: &[&str], unknown: UnknownNames) -> Running {
    let settings = DnsSettings {
        listen: vec!["127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!())],
        upstreams: upstreams.iter().map(|addr| addr.parse().unwrap_or_else(|_| panic!("bad addr {addr}"))).collect(),
        unknown,
        mark: 0x539,
    };
    let (memory, stats, registry) = (Arc::new(DnsMemory::new()), Arc::new(DnsStats::new()), Arc::new(registry));
    let server = DnsServer::bind(settings, registry.clone(), memory.clone(), stats.clone())
        .await
        .unwrap_or_else(|error| panic!("bind: {error}"));
    let addr = *server.local_addrs().first().unwrap_or_else(|| panic!("no local address"));
    let task = tokio::spawn(server.run());
    Running { addr, memory, stats, registry, task }
}

impl Running {
    pub fn stat(&self, name: &str) -> u64 {
        self.stats.snapshot().into_iter().find(|(stat, _)| *stat == name).map_or(0, |(_, value)| value)
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Via {
    Udp,
    Tcp,
}

/// Asks `server` about `name` from `from` (port chosen by the system).
pub async fn ask(via: Via, server: SocketAddr, from: &str, name: &str, qtype: RecordType) -> Message {
    let bind = SocketAddr::new(from.parse().unwrap_or_else(|_| panic!("bad ip {from}")), 0);
    let name = Name::from_ascii(name).unwrap_or_else(|error| panic!("bad name {name}: {error}"));
    let timeout = QUERY_BOUND;
    let provider = TokioRuntimeProvider::new();
    let (mut client, background) = match via {
        Via::Udp => {
            let stream = UdpClientStream::builder(server, provider)
                .with_bind_addr(Some(bind))
                .with_timeout(Some(timeout))
                .with_max_retries(0)
                .build();
            let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
            (client, tokio::spawn(background).abort_handle())
        }
        Via::Tcp => {
            let (connect, sender) = TcpClientStream::new(server, Some(bind), Some(timeout), provider);
            let stream = connect.await.unwrap_or_else(|error| panic!("TCP connect to {server}: {error}"));
            let (client, background) = Client::<TokioRuntimeProvider>::with_timeout(stream, sender, timeout);
            (client, tokio::spawn(background).abort_handle())
        }
    };
    let response = client.query(name.clone(), DNSClass::IN, qtype).await;
    background.abort();
    response.unwrap_or_else(|error| panic!("{via:?} query {name} {qtype}: {error}")).into_message()
}

/// The A and AAAA addresses of an answer section, in order.
pub fn ips(message: &Message) -> Vec<IpAddr> {
    message
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect()
}

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap_or_else(|_| panic!("bad ip {text}"))
}
