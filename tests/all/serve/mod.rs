//! The HTTP front: channels, REST API, web chat, nodes on one database.

pub mod api;
pub mod delivery;
pub mod events;
pub mod front;
pub mod inbox;
pub mod nodes;
pub mod offloading;
pub mod sinch;
pub mod web;
pub mod web_security;
pub mod webhook;
