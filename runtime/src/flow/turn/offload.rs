//! Handing a conversation to a human: the flow engine's door to offloading
//! providers (an agent desk behind Chatlayer's offloading webhook, Sinch
//! Contact Pro). The server implements it; the engine only asks and routes
//! to the system block the answer picks.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

pub use crate::store::Offload;

/// An offload action's request.
#[derive(Debug, Clone)]
pub struct OffloadRequest {
    /// The provider's id in the serve config.
    pub provider: String,
    /// The action's `payload`, templates resolved.
    pub payload: Value,
    pub bot: String,
    /// `DRAFT` or `LIVE`.
    pub version: String,
    pub conversation: String,
    pub channel: String,
    /// This turn's transcript events so far (not yet committed).
    pub events: Vec<Value>,
    /// Transcript entries committed before this turn.
    pub transcript_len: u64,
    /// The session as it is now.
    pub session: Value,
}

/// What the provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffloadAnswer {
    /// An agent will take over; `pause`: the bot stops answering.
    Opened { pause: bool },
    /// The provider answered that no agent is available.
    Closed,
    /// No such provider, it is unhealthy, or the call failed: why.
    Disabled(String),
}

pub type OffloadFuture<'a> = Pin<Box<dyn Future<Output = OffloadAnswer> + Send + 'a>>;

pub trait Offloader: Send + Sync {
    fn offload(&self, request: OffloadRequest) -> OffloadFuture<'_>;
}
