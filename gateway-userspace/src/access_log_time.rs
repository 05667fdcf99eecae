//! The time stamp each line opens with, in RFC 3339 as the `time` crate
//! writes it (UTC, the fraction with its trailing zeros left off). The
//! date and time of day change once a second, so each thread keeps the
//! last second's text and writes only the fraction anew.

use std::{cell::RefCell, time::SystemTime};

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// A second's `YYYY-MM-DDTHH:MM:SS`.
pub(crate) struct Second {
    unix: u64,
    text: String,
}

thread_local! {
    static LAST: RefCell<Option<Second>> = const { RefCell::new(None) };
}

pub fn now_rfc3339() -> String {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => LAST.with_borrow_mut(|last| rfc3339(since.as_secs(), since.subsec_nanos(), last)),
        // A clock before 1970: the crate's own formatting.
        Err(_) => OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
    }
}

/// `unix` seconds and `nanos` as RFC 3339, reusing `last` when it is the
/// same second.
pub(crate) fn rfc3339(unix: u64, nanos: u32, last: &mut Option<Second>) -> String {
    if last.as_ref().is_none_or(|s| s.unix != unix) {
        let Some(text) = i64::try_from(unix)
            .ok()
            .and_then(|u| OffsetDateTime::from_unix_timestamp(u).ok())
            .and_then(|t| t.format(&Rfc3339).ok())
            .and_then(|t| t.strip_suffix('Z').map(str::to_string))
        else {
            return String::new();
        };
        *last = Some(Second { unix, text });
    }
    let second = &last.as_ref().expect("just filled").text;
    let mut out = String::with_capacity(second.len() + 11);
    out.push_str(second);
    if nanos > 0 {
        // Nine digits, then the trailing zeros dropped.
        let mut digits = [b'0'; 9];
        let mut n = nanos;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let end = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
        out.push('.');
        out.push_str(std::str::from_utf8(&digits[..end]).expect("ASCII digits"));
    }
    out.push('Z');
    out
}
