//! The proxy half of the gateway: the routing table, the upstreams'
//! instances, the client towards them, and the forwarding of requests and their (streamed) replies.

mod body;
pub mod forward;
pub(crate) mod headers;
mod inject_auth;
pub mod instances;
pub mod path;
pub mod routing;
pub mod upstream;

pub use upstream::UpstreamClient;
