//! HPACK Huffman decoding (RFC 7541 §5.2, Appendix B).
//!
//! The HPACK code is canonical: ordering the symbols by (code length,
//! symbol) and counting upwards reproduces every code of Appendix B. So the
//! code lengths alone define it, and decoding needs, per length, the first
//! code and where its symbols start in that ordering.

/// Code length in bits of each symbol 0..=255 and of EOS (256).
const CODE_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, //
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, //
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, //
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, //
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, //
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, //
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, //
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, //
    30,
];

const MAX_CODE_LEN: usize = 30;
const EOS: u16 = 256;

struct Canonical {
    /// Number of codes of each length.
    count: [u32; MAX_CODE_LEN + 1],
    /// Numerically first code of each length.
    first_code: [u32; MAX_CODE_LEN + 1],
    /// Index into `symbols` of the first symbol of each length.
    first_index: [u32; MAX_CODE_LEN + 1],
    /// Symbols ordered by (code length, symbol).
    symbols: [u16; 257],
}

const CANONICAL: Canonical = build();

const fn build() -> Canonical {
    let mut t = Canonical {
        count: [0; MAX_CODE_LEN + 1],
        first_code: [0; MAX_CODE_LEN + 1],
        first_index: [0; MAX_CODE_LEN + 1],
        symbols: [0; 257],
    };
    let mut sym = 0;
    while sym < 257 {
        t.count[CODE_LENGTHS[sym] as usize] += 1;
        sym += 1;
    }
    let mut code = 0u32;
    let mut index = 0u32;
    let mut len = 1;
    while len <= MAX_CODE_LEN {
        code <<= 1;
        t.first_code[len] = code;
        t.first_index[len] = index;
        code += t.count[len];
        index += t.count[len];
        len += 1;
    }
    let mut next = 0;
    len = 1;
    while len <= MAX_CODE_LEN {
        sym = 0;
        while sym < 257 {
            if CODE_LENGTHS[sym] as usize == len {
                t.symbols[next] = sym as u16;
                next += 1;
            }
            sym += 1;
        }
        len += 1;
    }
    t
}

/// Decode a Huffman-coded string literal.
pub(crate) fn decode(src: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(src.len() * 8 / 5 + 1);
    let mut code = 0u32;
    let mut len = 0usize;
    for &byte in src {
        for shift in (0..8).rev() {
            code = code << 1 | u32::from(byte >> shift & 1);
            len += 1;
            if let Some(sym) = lookup(code, len) {
                if sym == EOS {
                    return Err("hpack: EOS inside huffman string");
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            } else if len >= MAX_CODE_LEN {
                return Err("hpack: invalid huffman code");
            }
        }
    }
    // Padding: fewer than 8 bits, all ones (a prefix of EOS).
    if len > 7 || code != (1 << len) - 1 {
        return Err("hpack: invalid huffman padding");
    }
    Ok(out)
}

fn lookup(code: u32, len: usize) -> Option<u16> {
    let count = *CANONICAL.count.get(len)?;
    let offset = code.checked_sub(*CANONICAL.first_code.get(len)?)?;
    if offset >= count {
        return None;
    }
    let index = CANONICAL.first_index.get(len)? + offset;
    CANONICAL.symbols.get(usize::try_from(index).ok()?).copied()
}

/// Huffman-encode `src`, for building test input.
#[cfg(test)]
pub(crate) fn encode(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    for &b in src {
        let len = usize::from(CODE_LENGTHS[usize::from(b)]);
        let rank = CANONICAL.symbols[CANONICAL.first_index[len] as usize..]
            .iter()
            .position(|&s| s == u16::from(b))
            .unwrap_or_default() as u32;
        acc = acc << len | u64::from(CANONICAL.first_code[len] + rank);
        bits += len as u32;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        out.push((acc << (8 - bits)) as u8 | (0xff >> bits) as u8);
    }
    out
}
