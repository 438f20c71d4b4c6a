//! The bridge: the N-API surface of oomguard. These functions are the
//! building blocks lib/ (the JavaScript API) calls; everything they call is
//! the plain-Rust core in the crate's other modules, which knows nothing of
//! N-API. Data flows one way: the core reads, this layer copies what it read
//! into JavaScript (slots of a `Float64Array`, the watch block, plain objects).
//!
//! - [`reading`]: `sample()` / `describe()` and the reader cache behind them;
//!   [`slots`] is the reading's numeric layout.
//! - [`watch`]: the monitor's native half (`watchStart()` and friends).
//! - [`doctor`]: the doctor's building blocks (`heapModel()`, `cgroupFiles()`).
//! - [`owner`]: who owns a last-words file, who holds a port.
//! - [`types`]: the objects these functions return.

pub mod doctor;
pub mod owner;
pub mod reading;
pub mod slots;
pub mod types;
pub mod v8heap;
pub mod watch;

use std::sync::{Mutex, MutexGuard};

use napi::bindgen_prelude::*;
use napi::Env;

use crate::{diagnose, guard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A caught panic as the JS error an entry point throws.
fn internal_error(p: guard::Panic) -> Error {
    Error::new(Status::GenericFailure, p.to_string())
}

/// The running node's version, asked once (the heap model depends on it).
fn running_node(env: &Env) -> diagnose::NodeVersion {
    static ASKED: std::sync::Once = std::sync::Once::new();
    ASKED.call_once(|| {
        if let Ok(v) = env.get_node_version() {
            diagnose::set_running_node(diagnose::NodeVersion {
                major: v.major,
                minor: v.minor,
                patch: v.patch,
            });
        }
    });
    diagnose::running_node()
}
