//! HPACK header block decoding (RFC 7541), enough for one request's headers.
//!
//! Every read is bounds-checked, integers are capped, and the decoded header
//! list is limited, so a small block cannot expand into a large allocation.

use std::collections::VecDeque;

use super::huffman;

/// A decoded header field: name and value, as raw bytes.
pub type Field = (Vec<u8>, Vec<u8>);

/// Dynamic table size a client may use before the server's SETTINGS arrive
/// (SETTINGS_HEADER_TABLE_SIZE default, RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;
/// Most bytes the decoded header list may take, counted as in RFC 7541 §4.1.
pub const MAX_HEADER_LIST_SIZE: usize = 64 * 1024;
/// Per-entry overhead of the dynamic table (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Decoder state: the dynamic table.
pub struct Decoder {
    entries: VecDeque<Field>,
    size: usize,
    max_size: usize,
    /// Upper bound for `max_size` (the protocol setting).
    limit: usize,
}

impl Decoder {
    pub fn new(limit: usize) -> Self {
        Decoder {
            entries: VecDeque::new(),
            size: 0,
            max_size: limit,
            limit,
        }
    }

    /// Decode one complete header block.
    pub fn decode(&mut self, mut block: &[u8]) -> Result<Vec<Field>, &'static str> {
        let mut fields: Vec<Field> = Vec::new();
        let mut list_size = 0usize;
        while let Some(&first) = block.first() {
            let field = if first & 0x80 != 0 {
                let index = integer(&mut block, 7)?;
                self.get(index)?
            } else if first & 0xc0 == 0x40 {
                let field = self.literal(&mut block, 6)?;
                self.insert(field.clone());
                field
            } else if first & 0xe0 == 0x20 {
                let new_size = integer(&mut block, 5)?;
                if !fields.is_empty() {
                    return Err("hpack: table size update after a header field");
                }
                if new_size > self.limit {
                    return Err("hpack: table size update above the limit");
                }
                self.max_size = new_size;
                self.evict(0);
                continue;
            } else {
                // Literal without indexing (0000) or never indexed (0001).
                self.literal(&mut block, 4)?
            };
            list_size = list_size.saturating_add(field.0.len() + field.1.len() + ENTRY_OVERHEAD);
            if list_size > MAX_HEADER_LIST_SIZE {
                return Err("hpack: header list too large");
            }
            fields.push(field);
        }
        Ok(fields)
    }

    fn literal(&self, block: &mut &[u8], prefix: u8) -> Result<Field, &'static str> {
        let index = integer(block, prefix)?;
        let name = if index == 0 {
            string(block)?
        } else {
            self.get(index)?.0
        };
        let value = string(block)?;
        Ok((name, value))
    }

    fn get(&self, index: usize) -> Result<Field, &'static str> {
        if index == 0 {
            return Err("hpack: index 0");
        }
        if let Some((name, value)) = STATIC_TABLE.get(index - 1) {
            return Ok((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
        }
        self.entries
            .get(index - 1 - STATIC_TABLE.len())
            .cloned()
            .ok_or("hpack: index beyond the dynamic table")
    }

    fn insert(&mut self, field: Field) {
        let entry_size = field.0.len() + field.1.len() + ENTRY_OVERHEAD;
        if entry_size > self.max_size {
            // An entry larger than the table empties it (RFC 7541 §4.4).
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict(entry_size);
        self.size += entry_size;
        self.entries.push_front(field);
    }

    /// Drop the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.entries.pop_back() {
                Some((name, value)) => {
                    self.size = self
                        .size
                        .saturating_sub(name.len() + value.len() + ENTRY_OVERHEAD);
                }
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }
}

/// Prefixed integer (RFC 7541 §5.1), capped at 2^28.
fn integer(block: &mut &[u8], prefix: u8) -> Result<usize, &'static str> {
    let (&first, rest) = block.split_first().ok_or("hpack: truncated integer")?;
    *block = rest;
    let mask = u8::MAX >> (8 - prefix);
    let mut value = usize::from(first & mask);
    if value < usize::from(mask) {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let (&byte, rest) = block.split_first().ok_or("hpack: truncated integer")?;
        *block = rest;
        if shift > 21 {
            return Err("hpack: integer too large");
        }
        value += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// String literal (RFC 7541 §5.2).
fn string(block: &mut &[u8]) -> Result<Vec<u8>, &'static str> {
    let huffman_coded = block.first().is_some_and(|&b| b & 0x80 != 0);
    let len = integer(block, 7)?;
    if len > block.len() {
        return Err("hpack: string overruns the block");
    }
    let (raw, rest) = block.split_at(len);
    *block = rest;
    if huffman_coded {
        huffman::decode(raw)
    } else {
        Ok(raw.to_vec())
    }
}
