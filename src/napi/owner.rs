//! Who owns a last-words file and who holds a port (src/watch/owner.rs), for
//! lib/core/watch.js (`monitor.lastWordsFile`) and the register's `/metrics`
//! line (internal).

use std::path::Path;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::internal_error;
use crate::guard;
use crate::watch::owner;

/// Whether this process owns a last-words file its monitors hold (internal).
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct NativeOwnership {
    pub owner: bool,
    pub holder_pid: Option<u32>,
    pub holder_command: Option<String>,
}

/// `null` where no monitor of this process holds `path` (not a regular
/// file it could open: each record opens the path itself).
#[napi]
pub fn last_words_ownership(path: String) -> Result<Option<NativeOwnership>> {
    guard::catch("lastWordsOwnership", || {
        owner::ownership(Path::new(&path)).map(|o| NativeOwnership {
            owner: o.owner,
            holder_pid: o.holder.as_ref().map(|p| p.pid),
            holder_command: o.holder.and_then(|p| p.command),
        })
    })
    .map_err(internal_error)
}

/// The process holding a TCP port (internal).
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct NativePortHolder {
    pub pid: u32,
    pub command: Option<String>,
    /// The value of the variable asked for in its initial environment, where readable.
    pub env_value: Option<String>,
}

/// The process listening on TCP `port` in this network namespace, where
/// `/proc` shows it (bounded: a few thousand processes and descriptors).
#[napi]
pub fn port_holder(port: u32, env_name: String) -> Result<Option<NativePortHolder>> {
    let Ok(port) = u16::try_from(port) else {
        return Ok(None);
    };
    guard::catch("portHolder", || {
        owner::port_holder(port).map(|p| NativePortHolder {
            pid: p.pid,
            env_value: owner::environ_value(p.pid, &env_name),
            command: p.command,
        })
    })
    .map_err(internal_error)
}
