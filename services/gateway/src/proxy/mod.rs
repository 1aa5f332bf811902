//! The proxy half of the gateway: the routing table and the forwarding of
//! requests and their (streamed) replies.

pub mod forward;
pub mod routing;
