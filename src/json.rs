//! The JSON text of the records (last words, a stall's figures): strings
//! escaped and cut to a bound, so a record stays within its line. Numbers
//! are each record's own (their precision is part of the record).

use std::fmt::Write as _;

/// `s` cut to at most `max` bytes, at a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` as a JSON string, cut to at most `max` bytes first.
pub fn string_max(out: &mut String, s: &str, max: usize) {
    // Cut at a character boundary; the record must stay under MAX_LINE.
    let s = cut(s, max);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
