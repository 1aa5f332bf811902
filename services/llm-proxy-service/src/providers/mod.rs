//! LLM providers behind the proxy.

pub mod builtin;
