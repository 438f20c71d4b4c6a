//! Where panics stop. Every entry point from JavaScript and every sampler
//! pass runs its work through [`catch`]: a bug becomes a [`Panic`] value the
//! caller turns into a JS error, a diagnosis or an `error` event, never an
//! abort of the process and never a thread that silently dies.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A caught panic: what was running and the panic's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panic {
    /// What was running, e.g. `sample` or `reading memory.stat`.
    pub what: String,
    /// The panic's message (its payload when that was a string).
    pub message: String,
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "internal error (a bug in oomguard) in {}: {}",
            self.what, self.message
        )
    }
}

impl std::error::Error for Panic {}

fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Run `f`; a panic inside it comes back as `Err(Panic)` naming `what`.
///
/// The closure is asserted unwind-safe: callers must not reuse state that a
/// panic may have left half-updated without checking it (the readers are
/// rebuilt from scratch, the sampler's registry is re-read each pass).
pub fn catch<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, Panic> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| Panic {
        what: what.to_string(),
        message: payload_message(payload.as_ref()),
    })
}

/// The failure point named by `OOMGUARD_FAILPOINT`, read once at start-up.
static FAILPOINT: once_cell::sync::Lazy<Option<String>> =
    once_cell::sync::Lazy::new(|| std::env::var("OOMGUARD_FAILPOINT").ok());

/// Panic here when `OOMGUARD_FAILPOINT` names `at`: how the tests prove that
/// a panic at that point stays contained, now that no input is known to
/// cause one. Points: `sample` (the whole reading), `parse:<file name>`
/// (parsing that file, e.g. `parse:memory.stat`). Costs one comparison of an
/// empty `Option` when the variable is unset.
pub fn failpoint(at: impl FnOnce() -> String) {
    if let Some(want) = FAILPOINT.as_deref() {
        let at = at();
        if want == at {
            panic!("failure point {at} (OOMGUARD_FAILPOINT)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_values_through() {
        assert_eq!(catch("x", || 7), Ok(7));
    }

    #[test]
    fn turns_panics_into_values() {
        let p = catch("parsing", || -> u32 { panic!("index {} out of range", 3) }).unwrap_err();
        assert_eq!(p.what, "parsing");
        assert_eq!(p.message, "index 3 out of range");
        assert!(p.to_string().contains("parsing"), "{p}");

        let p = catch("static", || -> u32 { panic!("plain") }).unwrap_err();
        assert_eq!(p.message, "plain");

        let p = catch("other", || -> u32 { std::panic::panic_any(42u8) }).unwrap_err();
        assert_eq!(p.message, "panic with a non-string payload");
    }
}
