//! Asking the upstream resolvers, over sockets that carry `SO_MARK` so the
//! kernel programs let them through instead of sending them back to us.
//!
//! Each question goes out with a fresh random ID from a fresh socket, over
//! UDP first and over TCP when the UDP answer comes back truncated. The
//! resolvers are tried in order, each try bounded by a timeout.

use std::{io, net::SocketAddr, time::Duration};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream, UdpSocket},
    time::timeout,
};

use super::{DnsError, UPSTREAM_TRY_TIMEOUT, request::our_edns};

/// The largest UDP answer we read; we advertise less in our EDNS.
const UDP_RECEIVE_BUFFER: usize = 4096;

/// The upstream resolvers, and how to reach them.
#[derive(Clone, Debug)]
pub(crate) struct Upstreams {
    servers: Vec<SocketAddr>,
    mark: u32,
    try_timeout: Duration,
}

impl Upstreams {
    pub(crate) fn new(servers: Vec<SocketAddr>, mark: u32) -> Self {
        Self { servers, mark, try_timeout: UPSTREAM_TRY_TIMEOUT }
    }

    /// Asks `query` of each resolver in turn until one answers with anything
    /// but SERVFAIL or REFUSED. NXDOMAIN and NODATA are answers.
    pub(crate) async fn ask(&self, query: &Query) -> Result<Message, DnsError> {
        let mut last = DnsError::NoUpstreams;
        for &server in &self.servers {
            match self.ask_one(server, query).await {
                Ok(answer) => match answer.metadata.response_code {
                    ResponseCode::ServFail | ResponseCode::Refused => {
                        let code = answer.metadata.response_code.to_string();
                        last = DnsError::UpstreamRefused { upstream: server, code };
                    }
                    _ => return Ok(answer),
                },
                Err(error) => {
                    tracing::debug!(%error, "upstream DNS try failed");
                    last = error;
                }
            }
        }
        Err(last)
    }

    async fn ask_one(&self, server: SocketAddr, query: &Query) -> Result<Message, DnsError> {
        let mut message = Message::query();
        message.metadata.recursion_desired = true;
        message.add_query(query.clone());
        message.set_edns(our_edns());
        let bytes = message.to_vec().map_err(|error| DnsError::Encode(error.to_string()))?;
        let expect = Expected { id: message.metadata.id, query, server };
        let timed_out = DnsError::UpstreamTimeout { upstream: server, timeout: self.try_timeout };

        let answer = timeout(self.try_timeout, self.over_udp(&expect, &bytes)).await.map_err(|_| timed_out)??;
        if !answer.metadata.truncation {
            return Ok(answer);
        }
        let timed_out = DnsError::UpstreamTimeout { upstream: server, timeout: self.try_timeout };
        timeout(self.try_timeout, self.over_tcp(&expect, &bytes)).await.map_err(|_| timed_out)?
    }

    async fn over_udp(&self, expect: &Expected<'_>, bytes: &[u8]) -> Result<Message, DnsError> {
        let io_error = |source| DnsError::UpstreamIo { upstream: expect.server, source };
        let socket = marked_udp(expect.server, self.mark).await.map_err(io_error)?;
        socket.send(bytes).await.map_err(io_error)?;
        let mut buffer = vec![0u8; UDP_RECEIVE_BUFFER];
        loop {
            let len = socket.recv(&mut buffer).await.map_err(io_error)?;
            // A datagram that is not the answer to our question is ignored:
            // the timeout around this loop bounds the wait for the right one.
            match expect.check(buffer.get(..len).unwrap_or_default()) {
                Ok(answer) => return Ok(answer),
                Err(error) => tracing::debug!(%error, "ignoring a stray upstream DNS datagram"),
            }
        }
    }

    async fn over_tcp(&self, expect: &Expected<'_>, bytes: &[u8]) -> Result<Message, DnsError> {
        let io_error = |source| DnsError::UpstreamIo { upstream: expect.server, source };
        let length = u16::try_from(bytes.len())
            .map_err(|_| DnsError::Encode(format!("query of {} bytes is too long for TCP", bytes.len())))?;
        let mut stream = marked_tcp(expect.server, self.mark).await.map_err(io_error)?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(bytes);
        stream.write_all(&framed).await.map_err(io_error)?;
        let len = stream.read_u16().await.map_err(io_error)?;
        let mut buffer = vec![0u8; usize::from(len)];
        stream.read_exact(&mut buffer).await.map_err(io_error)?;
        expect.check(&buffer)
    }
}

/// What the answer to one question must look like.
pub struct Expected<'a> {
    pub id: u16,
    pub query: &'a Query,
    pub server: SocketAddr,
}

impl Expected<'_> {
    /// The answer in `bytes`, if it is a response to our query.
    pub fn check(&self, bytes: &[u8]) -> Result<Message, DnsError> {
        let malformed = |reason: String| DnsError::UpstreamMalformed { upstream: self.server, reason };
        let answer = Message::from_vec(bytes).map_err(|error| malformed(error.to_string()))?;
        if answer.metadata.id != self.id || answer.metadata.message_type != MessageType::Response {
            return Err(malformed(format!("unexpected message id {}", answer.metadata.id)));
        }
        // Another opcode's records (an UPDATE's empty ones) make no answer
        // to a query, and passed on they would make the client's reply
        // undecodable.
        if answer.metadata.op_code != OpCode::Query {
            return Err(malformed(format!("unexpected opcode {:?}", answer.metadata.op_code)));
        }
        // A truncated answer may leave its question out; anything else must echo ours.
        let echoes = matches!(answer.queries.as_slice(), [query] if query == self.query);
        let truncated_bare = answer.metadata.truncation && answer.queries.is_empty();
        if !(echoes || truncated_bare) {
            return Err(malformed("the answer is not about our question".to_string()));
        }
        Ok(answer)
    }
}

/// A UDP socket connected to `server`, marked, on an ephemeral port.
pub(crate) async fn marked_udp(server: SocketAddr, mark: u32) -> io::Result<UdpSocket> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    crate::transport::mark_socket(&socket, mark)?;
    socket.connect(server).await?;
    Ok(socket)
}

/// A TCP connection to `server`, marked before it connects.
pub(crate) async fn marked_tcp(server: SocketAddr, mark: u32) -> io::Result<TcpStream> {
    let socket = match server {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    crate::transport::mark_socket(&socket, mark)?;
    socket.set_nodelay(true)?;
    socket.connect(server).await
}
