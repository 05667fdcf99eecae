//! The proxy's side of the handshake with the kernel: from an accepted
//! socket's (peer, local) addresses to where the client meant to go.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use aya::maps::{HashMap, Map, MapData, MapError};
use gateway_common::{OrigDst, SockTuple, map_names};

use super::{InterceptorError, PinLayout};

/// What the kernel recorded at `connect()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrigDstRecord {
    pub addr: SocketAddr,
    pub pid: u32,
    pub cgroup_id: u64,
}

pub struct OrigDstLookup {
    map: HashMap<MapData, SockTuple, OrigDst>,
}

impl OrigDstLookup {
    pub fn open(layout: &PinLayout) -> Result<Self, InterceptorError> {
        let name = map_names::ORIG_TUPLE;
        let data = MapData::from_pin(layout.map(name))
            .map_err(|source| InterceptorError::Map { name, source })?;
        let map = HashMap::try_from(Map::HashMap(data))
            .map_err(|source| InterceptorError::Map { name, source })?;
        Ok(Self { map })
    }

    /// `Ok(None)`: the kernel holds no record for this connection.
    pub fn lookup(&self, peer: SocketAddr, local: SocketAddr) -> Result<Option<OrigDstRecord>, MapError> {
        match self.map.get(&tuple_key(peer, local), 0) {
            Ok(v) => Ok(Some(record(&v))),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The key the kernel filed the record under, seen from the accepting side.
pub fn tuple_key(peer: SocketAddr, local: SocketAddr) -> SockTuple {
    SockTuple {
        src_addr: sixteen(peer.ip()),
        dst_addr: sixteen(local.ip()),
        src_port: peer.port(),
        dst_port: local.port(),
        _pad: 0,
    }
}

fn sixteen(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

pub(super) fn record(v: &OrigDst) -> OrigDstRecord {
    OrigDstRecord {
        addr: SocketAddr::new(Ipv6Addr::from(v.addr).to_canonical(), v.port),
        pid: v.pid,
        cgroup_id: v.cgroup_id,
    }
}
