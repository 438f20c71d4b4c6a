//! oomguard: the cgroup memory numbers the kernel kills by, read from inside
//! a Node.js process.
//!
//! The modules here are the core: plain Rust that parses, locates, reads,
//! diagnoses and samples, knows nothing about N-API and is tested with
//! `cargo test`. The bridge to JavaScript (the `#[napi]` functions, the
//! reading's slot layout) is [`napi`]; nothing in the core uses it.

#![deny(clippy::all)]

pub mod diagnose;
pub mod error;
pub mod file;
pub mod guard;
pub mod json;
pub mod locate;
pub mod named;
pub mod options;
pub mod parse;
pub mod procs;
pub mod reader;
pub mod stat;
pub mod watch;

pub mod napi;
