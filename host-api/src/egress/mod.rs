//! Outbound HTTP under the tenant's egress policy (deny by default).

mod address;
mod client;
mod policy;

pub use address::non_public_reason;
pub use client::{Egress, FetchError, FetchRequest, FetchResponse};
pub use policy::{Denied, EgressPolicy, HostRule};
