//! The proxy's own name resolution, for hosts resolved by DNS: A and AAAA
//! through the upstream resolvers over marked sockets, cached by TTL.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Message, Query, ResponseCode},
    rr::{Name, RecordType},
};

use super::{DnsError, answer::addresses_for, memory::normalize, upstream::Upstreams};

/// Names cached at once; past it, expired names go first, then any.
const CACHE_NAMES: usize = 4096;
/// Bounds on how long an answer is cached, whatever its TTL says.
const MIN_TTL: Duration = Duration::from_secs(1);
const MAX_TTL: Duration = Duration::from_secs(3600);
/// How long a name without addresses is remembered as such.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// Resolves names through the upstream resolvers, with a cache.
#[derive(Debug)]
pub struct Resolver {
    upstreams: Upstreams,
    cache: Mutex<HashMap<String, Cached>>,
}

#[derive(Clone, Debug)]
struct Cached {
    /// Empty when the name has no address.
    addresses: Vec<IpAddr>,
    expires: Instant,
}

impl Resolver {
    pub fn new(upstreams: Vec<SocketAddr>, mark: u32) -> Self {
        Self { upstreams: Upstreams::new(upstreams, mark), cache: Mutex::default() }
    }

    /// The A and AAAA addresses of `name`, IPv4 first. An IP literal
    /// resolves to itself. Fails if the upstreams fail or the name has no
    /// address.
    pub async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let key = normalize(name);
        if let Ok(ip) = key.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let now = Instant::now();
        if let Some(cached) = self.lock().get(&key).filter(|cached| cached.expires > now).cloned() {
            return found(&key, cached.addresses);
        }
        let mut fqdn = Name::from_ascii(&key)
            .map_err(|error| DnsError::InvalidName { name: name.to_string(), reason: error.to_string() })?;
        fqdn.set_fqdn(true);
        let (ask_v4, ask_v6) =
            (Query::query(fqdn.clone(), RecordType::A), Query::query(fqdn.clone(), RecordType::AAAA));
        let (v4, v6) = tokio::join!(self.upstreams.ask(&ask_v4), self.upstreams.ask(&ask_v6));
        let (v4, v6, failure) = match (v4, v6) {
            (Ok(v4), Ok(v6)) => (Some(v4), Some(v6), None),
            (Ok(v4), Err(error)) => (Some(v4), None, Some(error)),
            (Err(error), Ok(v6)) => (None, Some(v6), Some(error)),
            (Err(error), Err(_)) => return Err(error),
        };
        let (addresses, ttl) = merge(&fqdn, [v4, v6]);
        let ttl = match failure {
            // Half an answer is used, but asked again soon.
            Some(error) if addresses.is_empty() => return Err(error),
            Some(_) => NEGATIVE_TTL,
            None if addresses.is_empty() => NEGATIVE_TTL,
            None => ttl.clamp(MIN_TTL, MAX_TTL),
        };
        self.store(key.clone(), Cached { addresses: addresses.clone(), expires: now + ttl });
        found(&key, addresses)
    }

    fn store(&self, key: String, entry: Cached) {
        let mut cache = self.lock();
        if cache.len() >= CACHE_NAMES && !cache.contains_key(&key) {
            let now = Instant::now();
            cache.retain(|_, cached| cached.expires > now);
            if cache.len() >= CACHE_NAMES
                && let Some(any) = cache.keys().next().cloned()
            {
                cache.remove(&any);
            }
        }
        cache.insert(key, entry);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Cached>> {
        // A cache is fine to reuse even if a panic interrupted someone else.
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The addresses of the answers that came back, and the smallest TTL among them.
fn merge(name: &Name, answers: [Option<Message>; 2]) -> (Vec<IpAddr>, Duration) {
    let mut addresses = Vec::new();
    let mut ttl = u32::MAX;
    for answer in answers.into_iter().flatten() {
        if answer.metadata.response_code != ResponseCode::NoError {
            continue;
        }
        for (ip, record_ttl) in addresses_for(name, &answer.answers) {
            ttl = ttl.min(record_ttl);
            if !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
    }
    addresses.sort_by_key(|ip| ip.is_ipv6());
    (addresses, Duration::from_secs(u64::from(ttl)))
}

fn found(name: &str, addresses: Vec<IpAddr>) -> Result<Vec<IpAddr>, DnsError> {
    if addresses.is_empty() {
        return Err(DnsError::NoAddresses { name: name.to_string() });
    }
    Ok(addresses)
}

impl crate::transport::NameResolver for Resolver {
    fn resolve<'a>(&'a self, host: &'a str) -> std::pin::Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>> {
        Box::pin(async move { Resolver::resolve(self, host).await.map_err(std::io::Error::other) })
    }
}
