//! The kernel relay's maps (`relay.rs` in the kernel programs): which socket
//! sends its bytes to which, and how many it sent.

use std::{os::fd::AsRawFd, sync::Mutex};

use aya::maps::{HashMap, Map, MapData, SockHash};
use gateway_common::{RelayPeer, map_names};

use super::{InterceptorError, PinLayout, open_map};

/// Both maps; updates are serialised, lookups are cheap syscalls.
pub struct RelayMaps {
    socks: Mutex<SockHash<MapData, u64>>,
    peers: Mutex<HashMap<MapData, u64, RelayPeer>>,
}

impl RelayMaps {
    pub fn open(layout: &PinLayout) -> Result<Self, InterceptorError> {
        let (sn, pn) = (map_names::RELAY_SOCKS, map_names::RELAY_PEERS);
        let socks = SockHash::try_from(Map::SockHash(open_map(layout, sn)?))
            .map_err(|source| InterceptorError::Map { name: sn, source })?;
        let peers = HashMap::try_from(Map::HashMap(open_map(layout, pn)?))
            .map_err(|source| InterceptorError::Map { name: pn, source })?;
        Ok(Self { socks: Mutex::new(socks), peers: Mutex::new(peers) })
    }

    /// Files `cookie`'s peer; its bytes go there once the socket is added.
    pub fn set_peer(&self, cookie: u64, peer: u64) -> Result<(), aya::maps::MapError> {
        let record = RelayPeer { peer, ..Default::default() };
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).insert(cookie, record, 0)
    }

    /// Adds a socket: from now on the verdict program sees what it receives.
    pub fn add_socket(&self, cookie: u64, socket: &impl AsRawFd) -> Result<(), aya::maps::MapError> {
        self.socks.lock().unwrap_or_else(|e| e.into_inner()).insert(cookie, socket.as_raw_fd(), 0)
    }

    pub fn peer(&self, cookie: u64) -> Option<RelayPeer> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).get(&cookie, 0).ok()
    }

    /// Removes a socket and its record; missing entries are fine.
    pub fn forget(&self, cookie: u64) {
        let _ = self.socks.lock().unwrap_or_else(|e| e.into_inner()).remove(&cookie);
        let _ = self.peers.lock().unwrap_or_else(|e| e.into_inner()).remove(&cookie);
    }
}
