//! gateway's tests that read a process-wide `/metrics` value, which any
//! other test running beside them would move. So this binary holds one
//! test: a second one here would move the first one's value.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

#[path = "../api/common/mod.rs"]
#[expect(
    dead_code,
    unused_imports,
    reason = "the tests here use a part of the helpers tests/api shares"
)]
mod common;
mod passwords;
