//! The appendix: what a monitor's JavaScript side knows and the sampler
//! cannot (the heap profile's top allocation sites), handed over pre-encoded
//! and appended to that monitor's records where it fits.

use super::*;

/// The most candidates one monitor may hand over (lib/core/heap-profile.js
/// hands one per record shape: 6 today).
pub const MAX_APPENDIX_CANDIDATES: usize = 8;

/// Per monitor: its candidates (JSON members `"key":value`, longest first)
/// and the verdict of its last record.
struct Appendix {
    monitor: u32,
    candidates: Vec<String>,
    verdict: Option<String>,
}

static APPENDIX: std::sync::Mutex<Vec<Appendix>> = std::sync::Mutex::new(Vec::new());

fn appendix_lock() -> std::sync::MutexGuard<'static, Vec<Appendix>> {
    APPENDIX.lock().unwrap_or_else(|p| p.into_inner())
}

/// Set the monitor's appendix. Each candidate is one JSON object member,
/// `"key":value`, on one line, shorter than [`MAX_LINE`]; a record takes
/// the first candidate that keeps it under [`MAX_LINE`], or none (an empty
/// list: none, the monitor's verdicts still kept). Refuses anything else
/// (nothing is changed then). Returns the verdict of the monitor's last
/// record since its appendix was first set, if any.
pub fn set_appendix(monitor: u32, candidates: Vec<String>) -> Result<Option<String>, String> {
    if candidates.len() > MAX_APPENDIX_CANDIDATES {
        return Err(format!(
            "at most {MAX_APPENDIX_CANDIDATES} candidates, got {}",
            candidates.len()
        ));
    }
    for c in &candidates {
        let ok = c.len() < MAX_LINE
            && c.starts_with('"')
            && c.contains("\":")
            && !c.bytes().any(|b| b < 0x20);
        if !ok {
            return Err("a candidate must be one JSON member \"key\":value on one line, shorter than 2048 bytes".into());
        }
    }
    let mut all = appendix_lock();
    match all.iter_mut().find(|a| a.monitor == monitor) {
        Some(a) => {
            a.candidates = candidates;
            Ok(a.verdict.clone())
        }
        None => {
            all.push(Appendix {
                monitor,
                candidates,
                verdict: None,
            });
            Ok(None)
        }
    }
}

/// Forget a monitor's appendix (it closed).
pub fn forget_appendix(monitor: u32) {
    appendix_lock().retain(|a| a.monitor != monitor);
}

/// The value of a string member `"key":"value"` of a record (no escapes in
/// the values looked for).
fn member<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(key)? + key.len();
    let rest = line[at..].strip_prefix(":\"")?;
    Some(&rest[..rest.find('"')?])
}

/// `line` (a record from [`record`]) with the monitor's appendix appended
/// as its last member: the first candidate that keeps it under
/// [`MAX_LINE`]; the line unchanged when none does or there is none. Keeps
/// the record's verdict for [`set_appendix`] to return.
pub fn with_appendix(monitor: u32, line: String) -> String {
    let mut all = appendix_lock();
    let Some(a) = all.iter_mut().find(|a| a.monitor == monitor) else {
        return line;
    };
    a.verdict = member(&line, "\"verdict\"").map(|v| match member(&line, "\"cause\"") {
        Some(c) if v == "stall" => format!("stall:{c}"),
        _ => v.to_string(),
    });
    let Some(head) = line.strip_suffix("}\n") else {
        return line;
    };
    match a
        .candidates
        .iter()
        .find(|c| head.len() + c.len() + 3 < MAX_LINE)
    {
        Some(c) => {
            let mut out = String::with_capacity(head.len() + c.len() + 3);
            out.push_str(head);
            out.push(',');
            out.push_str(c);
            out.push_str("}\n");
            out
        }
        None => line,
    }
}
