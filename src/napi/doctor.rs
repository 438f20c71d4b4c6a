//! The doctor's native building blocks (internal: lib/integrations/doctor.js words its
//! report with them).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::internal_error;
use crate::{diagnose, guard, locate};

/// The heap advice for a limit, by oomguard's model of V8's heap sizing
/// (internal: the doctor starts from it, then measures).
#[napi]
pub fn heap_model(
    limit_bytes: f64,
    constrained_memory_bytes: f64,
    node_version: String,
) -> Result<HeapModel> {
    let node = diagnose::NodeVersion::parse(&node_version).ok_or_else(|| {
        Error::new(
            Status::InvalidArg,
            format!("nodeVersion must look like 24.19.0, got {node_version:?}"),
        )
    })?;
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !(positive(limit_bytes) && positive(constrained_memory_bytes)) {
        return Err(Error::new(
            Status::InvalidArg,
            "limitBytes and constrainedMemoryBytes must be positive numbers of bytes".to_string(),
        ));
    }
    guard::catch("heapModel", || {
        heap_model_of(limit_bytes, constrained_memory_bytes, node)
    })
    .map_err(internal_error)
}

fn heap_model_of(
    limit_bytes: f64,
    constrained_memory_bytes: f64,
    node: diagnose::NodeVersion,
) -> HeapModel {
    let a = diagnose::heap_advice(limit_bytes, constrained_memory_bytes, node);
    let constrained_mib = constrained_memory_bytes / (1024.0 * 1024.0);
    HeapModel {
        young_generation_mib: diagnose::young_generation_mib(constrained_mib, node),
        default_heap_limit_mib: diagnose::default_heap_limit_mib(constrained_mib, node),
        max_old_space_size_mib: a.max_old_space_size_mib,
        max_semi_space_size_mib: a.max_semi_space_size_mib,
        heap_limit_mib: a.heap_limit_mib,
        node_options: a.node_options(),
        max_old_space_size_percentage: a.max_old_space_size_percentage,
        percentage_heap_limit_mib: a.percentage_heap_limit_mib,
        percentage_node_options: a.percentage_node_options(),
        has_old_space_percentage: node.has_old_space_percentage(),
    }
}

/// What `heapModel()` returns (internal). MiB throughout.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct HeapModel {
    /// The young generation node adds to `--max-old-space-size`.
    pub young_generation_mib: f64,
    /// The heap limit node has without heap flags.
    pub default_heap_limit_mib: f64,
    pub max_old_space_size_mib: f64,
    pub max_semi_space_size_mib: Option<f64>,
    /// The heap limit `nodeOptions` gives, by the model.
    pub heap_limit_mib: f64,
    pub node_options: String,
    pub max_old_space_size_percentage: Option<f64>,
    pub percentage_heap_limit_mib: Option<f64>,
    pub percentage_node_options: Option<String>,
    /// Whether this Node version has `--max-old-space-size-percentage`.
    pub has_old_space_percentage: bool,
}

/// The kernel files the diagnoses name, as [cgroup version, fact, file]
/// triples (internal: the doctor words its checks with them).
#[napi]
pub fn cgroup_files() -> Result<Vec<(u32, &'static str, &'static str)>> {
    guard::catch("cgroupFiles", || {
        [locate::CgroupVersion::V1, locate::CgroupVersion::V2]
            .into_iter()
            .flat_map(|v| {
                crate::named::named_files(Some(v))
                    .entries()
                    .map(|(fact, file)| (v.number(), fact, file))
            })
            .collect()
    })
    .map_err(internal_error)
}
