//! The time stamp each line opens with, in RFC 3339 as the `time` crate
//! writes it (UTC, the fraction with its trailing zeros left off). The
//! date and time of day change once a second, so each thread keeps the
//! last second's text and writes only the fraction anew, into a stamp held
//! inline (no allocation per line).

use std::{cell::RefCell, fmt, time::SystemTime};

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// Room for the longest stamp, `9999-12-31T23:59:59.999999999Z` (30 bytes).
const ROOM: usize = 32;

/// An RFC 3339 time stamp, held inline.
#[derive(Clone, Copy)]
pub struct TimeStamp {
    len: u8,
    text: [u8; ROOM],
}

impl TimeStamp {
    /// The empty stamp of a record not yet finished.
    pub const EMPTY: TimeStamp = TimeStamp { len: 0, text: [0; ROOM] };

    pub fn as_str(&self) -> &str {
        // Text is pushed whole, or cut at `ROOM`; a cut inside a character
        // (never in RFC 3339 text, which is ASCII) reads as empty.
        std::str::from_utf8(&self.text[..usize::from(self.len)]).unwrap_or_default()
    }

    /// Appends `s`, as far as there is room (always, for RFC 3339 text).
    fn push(&mut self, s: &str) {
        let at = usize::from(self.len);
        let n = s.len().min(ROOM - at);
        self.text[at..at + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n as u8;
    }
}

impl From<&str> for TimeStamp {
    /// `s` as far as there is room: all of any RFC 3339 time stamp.
    fn from(s: &str) -> Self {
        let mut stamp = TimeStamp::EMPTY;
        stamp.push(s);
        stamp
    }
}

impl fmt::Debug for TimeStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl serde::Serialize for TimeStamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A second's `YYYY-MM-DDTHH:MM:SS`.
pub(crate) struct Second {
    unix: u64,
    text: String,
}

thread_local! {
    static LAST: RefCell<Option<Second>> = const { RefCell::new(None) };
}

pub fn now_rfc3339() -> TimeStamp {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => LAST.with_borrow_mut(|last| rfc3339(since.as_secs(), since.subsec_nanos(), last)),
        // A clock before 1970: the crate's own formatting.
        Err(_) => TimeStamp::from(OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default().as_str()),
    }
}

/// `unix` seconds and `nanos` as RFC 3339, reusing `last` when it is the
/// same second.
pub(crate) fn rfc3339(unix: u64, nanos: u32, last: &mut Option<Second>) -> TimeStamp {
    let mut out = TimeStamp::EMPTY;
    if last.as_ref().is_none_or(|s| s.unix != unix) {
        let Some(text) = i64::try_from(unix)
            .ok()
            .and_then(|u| OffsetDateTime::from_unix_timestamp(u).ok())
            .and_then(|t| t.format(&Rfc3339).ok())
            .and_then(|t| t.strip_suffix('Z').map(str::to_string))
        else {
            return out;
        };
        *last = Some(Second { unix, text });
    }
    out.push(&last.as_ref().expect("just filled").text);
    if nanos > 0 {
        // Nine digits, then the trailing zeros dropped.
        let mut digits = [b'0'; 9];
        let mut n = nanos;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let end = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
        out.push(".");
        out.push(std::str::from_utf8(&digits[..end]).expect("ASCII digits"));
    }
    out.push("Z");
    out
}
