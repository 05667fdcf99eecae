//! What each workload was told: (client IP, name) → the IPs answered, each
//! until its TTL runs out. The proxy asks it which names a destination IP
//! came from.
//!
//! Bounded: at most `per_client` names per client and `total` names overall;
//! past a bound the name recorded longest ago goes first. A TTL counts for at
//! most a day. Expired names are swept on every `record` and never reported.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

/// Names one client may have remembered at once.
pub const NAMES_PER_CLIENT: usize = 4096;
/// Names remembered at once over all clients.
pub const NAMES_TOTAL: usize = 1 << 20;
/// Addresses remembered for one name of one client.
const IPS_PER_NAME: usize = 64;
/// The longest any answer is remembered, whatever its TTL.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// An answer is remembered at least this long, even with a TTL of 0: the
/// client connects a moment after it resolves, and must not be refused for it.
pub const MIN_MEMORY: Duration = Duration::from_secs(5);

/// Per-workload memory of the addresses answered. `Send + Sync`; share it in an `Arc`.
#[derive(Debug)]
pub struct DnsMemory {
    book: Mutex<Book>,
    per_client: usize,
    total: usize,
}

#[derive(Debug, Default)]
struct Book {
    clients: HashMap<IpAddr, ClientBook>,
    /// Every (client, name) by the sequence number of its last record, oldest first.
    by_age: BTreeMap<u64, (IpAddr, Arc<str>)>,
    /// Every (client, name) by when its last address expires.
    by_expiry: BTreeSet<(Instant, u64)>,
    next_seq: u64,
}

#[derive(Debug, Default)]
struct ClientBook {
    names: HashMap<Arc<str>, Entry>,
    by_age: BTreeMap<u64, Arc<str>>,
    by_ip: HashMap<IpAddr, HashSet<Arc<str>>>,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    /// The latest expiry of `ips`.
    expires: Instant,
    ips: Vec<(IpAddr, Instant)>,
}

impl Default for DnsMemory {
    fn default() -> Self {
        Self::new()
    }
}

impl DnsMemory {
    pub fn new() -> Self {
        Self::with_limits(NAMES_PER_CLIENT, NAMES_TOTAL)
    }

    /// A memory holding at most `per_client` names per client and `total` overall.
    pub fn with_limits(per_client: usize, total: usize) -> Self {
        Self { book: Mutex::default(), per_client: per_client.max(1), total: total.max(1) }
    }

    /// Remembers that `client` was given `ips` for `name`, for `ttl`.
    pub fn record(&self, client: IpAddr, name: &str, ips: &[IpAddr], ttl: Duration) {
        self.record_at(Instant::now(), client, name, ips, ttl);
    }

    /// Whether `client` was given `ip` for `name`, and its TTL has not run out.
    pub fn answered(&self, client: IpAddr, name: &str, ip: IpAddr) -> bool {
        self.answered_at(Instant::now(), client, name, ip)
    }

    /// The names `client` was given `ip` for, within their TTL, sorted.
    pub fn names_for(&self, client: IpAddr, ip: IpAddr) -> Vec<String> {
        self.names_for_at(Instant::now(), client, ip)
    }

    /// How many (client, name) pairs are remembered.
    pub fn len(&self) -> usize {
        self.len_at(Instant::now())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn record_at(&self, now: Instant, client: IpAddr, name: &str, ips: &[IpAddr], ttl: Duration) {
        let name = normalize(name);
        let ttl = ttl.max(MIN_MEMORY);
        if ips.is_empty() || name.is_empty() {
            return;
        }
        let Some(expires) = now.checked_add(ttl.min(MAX_TTL)) else { return };
        let mut book = self.lock();
        book.sweep(now);
        let mut entry = match book.remove(client, &name) {
            Some(mut old) => {
                old.ips.retain(|(_, until)| *until > now);
                old
            }
            None => {
                book.make_room(client, self.per_client, self.total);
                Entry { seq: 0, expires, ips: Vec::new() }
            }
        };
        for ip in ips {
            match entry.ips.iter_mut().find(|(known, _)| known == ip) {
                Some((_, until)) => *until = (*until).max(expires),
                None => entry.ips.push((*ip, expires)),
            }
        }
        if entry.ips.len() > IPS_PER_NAME {
            entry.ips.sort_by_key(|(_, until)| std::cmp::Reverse(*until));
            entry.ips.truncate(IPS_PER_NAME);
        }
        entry.expires = entry.ips.iter().map(|(_, until)| *until).max().unwrap_or(expires);
        entry.seq = book.next_seq;
        book.next_seq += 1;
        book.insert(client, Arc::from(name), entry);
    }

    pub(crate) fn answered_at(&self, now: Instant, client: IpAddr, name: &str, ip: IpAddr) -> bool {
        let name = normalize(name);
        let book = self.lock();
        book.clients
            .get(&client)
            .and_then(|names| names.names.get(name.as_str()))
            .is_some_and(|entry| entry.gave(ip, now))
    }

    pub(crate) fn names_for_at(&self, now: Instant, client: IpAddr, ip: IpAddr) -> Vec<String> {
        let book = self.lock();
        let Some(names) = book.clients.get(&client) else { return Vec::new() };
        let Some(candidates) = names.by_ip.get(&ip) else { return Vec::new() };
        let mut found: Vec<String> = candidates
            .iter()
            .filter(|name| names.names.get(&***name).is_some_and(|entry| entry.gave(ip, now)))
            .map(|name| name.to_string())
            .collect();
        found.sort();
        found
    }

    pub(crate) fn len_at(&self, now: Instant) -> usize {
        let mut book = self.lock();
        book.sweep(now);
        book.by_age.len()
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // The book stays consistent between statements, so a panic elsewhere
        // while holding the lock leaves nothing half-done worth refusing.
        self.book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Entry {
    fn gave(&self, ip: IpAddr, now: Instant) -> bool {
        self.ips.iter().any(|(known, until)| *known == ip && *until > now)
    }
}

impl Book {
    /// Forgets every name whose last address expired.
    fn sweep(&mut self, now: Instant) {
        while let Some(&(expires, seq)) = self.by_expiry.first() {
            if expires > now {
                break;
            }
            self.by_expiry.pop_first();
            if let Some((client, name)) = self.by_age.get(&seq).cloned() {
                self.remove(client, &name);
            }
        }
    }

    /// Evicts the oldest names until one more fits for `client`.
    fn make_room(&mut self, client: IpAddr, per_client: usize, total: usize) {
        while self.clients.get(&client).is_some_and(|names| names.names.len() >= per_client) {
            let oldest = self.clients.get(&client).and_then(|names| names.by_age.values().next().cloned());
            match oldest {
                Some(name) => {
                    self.remove(client, &name);
                }
                None => break,
            }
        }
        while self.by_age.len() >= total {
            let Some((oldest_client, name)) = self.by_age.values().next().cloned() else { break };
            self.remove(oldest_client, &name);
        }
    }

    fn remove(&mut self, client: IpAddr, name: &str) -> Option<Entry> {
        let names = self.clients.get_mut(&client)?;
        let (key, entry) = names.names.remove_entry(name)?;
        names.by_age.remove(&entry.seq);
        for (ip, _) in &entry.ips {
            if let Some(set) = names.by_ip.get_mut(ip) {
                set.remove(&key);
                if set.is_empty() {
                    names.by_ip.remove(ip);
                }
            }
        }
        if names.names.is_empty() {
            self.clients.remove(&client);
        }
        self.by_age.remove(&entry.seq);
        self.by_expiry.remove(&(entry.expires, entry.seq));
        Some(entry)
    }

    fn insert(&mut self, client: IpAddr, name: Arc<str>, entry: Entry) {
        self.by_age.insert(entry.seq, (client, name.clone()));
        self.by_expiry.insert((entry.expires, entry.seq));
        let names = self.clients.entry(client).or_default();
        names.by_age.insert(entry.seq, name.clone());
        for (ip, _) in &entry.ips {
            names.by_ip.entry(*ip).or_default().insert(name.clone());
        }
        names.names.insert(name, entry);
    }
}

/// Names compare lowercase, without the final dot.
pub(crate) fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}
