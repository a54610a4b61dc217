//! Write Sandbot action plugins in a few lines.
//!
//! A plugin is a WebAssembly component for the `sandbot:action` world (see `wit/`
//! in the Sandbot repository). This crate holds the generated bindings and a small
//! safe API over them:
//!
//! - [`session`]: read and write session values as serde types;
//! - [`conversation`]: say messages, go to a block, log;
//! - [`http`]: fetch, done by the host under the tenant's egress policy;
//! - [`budget`]: what remains of fuel, wall time and HTTP calls;
//! - [`Action`] and [`export_action!`]: the entry point.
//!
//! ```ignore
//! use sandbot_sdk::{Action, ActionError, Value, conversation, session};
//!
//! struct Greet;
//!
//! impl Action for Greet {
//!     fn run(input: Value) -> Result<Value, ActionError> {
//!         let name: Option<String> = session::get("user.firstName")?;
//!         conversation::say_text(&format!("Hello {}!", name.unwrap_or_default()))?;
//!         conversation::goto(input["next"].as_str().unwrap_or("menu"));
//!         Ok(Value::Null)
//!     }
//! }
//!
//! sandbot_sdk::export_action!(Greet);
//! ```
//!
//! Everything a plugin changes is applied only when `run` returns `Ok`.

pub mod budget;
pub mod conversation;
mod error;
pub mod http;
pub mod session;

pub use error::ActionError;
pub use serde_json::{self, Value, json};

/// Parses the action's input into `T`; fails with code `invalid_arguments`.
pub fn args<T: serde::de::DeserializeOwned>(input: Value) -> Result<T, ActionError> {
    serde_json::from_value(input).map_err(|e| ActionError::new("invalid_arguments", e.to_string()))
}

/// The generated bindings (`wit-bindgen`), for what the safe API does not cover.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "sandbot:action/action",
        pub_export_macro: true,
        export_macro_name: "__export_action_world",
        default_bindings_module: "sandbot_sdk::bindings",
    });
}

/// An action: what the host calls once per invocation, on a fresh instance.
pub trait Action {
    /// Runs the action. `input` is the action's configured arguments; the returned
    /// value goes back to the flow (`Value::Null` when there is nothing to return).
    fn run(input: Value) -> Result<Value, ActionError>;
}

/// Glue between the generated export and [`Action`]: parses the input, serializes
/// the output. Used by [`export_action!`]; not part of the stable API.
#[doc(hidden)]
pub fn __run<A: Action>(input: String) -> Result<String, bindings::ActionError> {
    let input = if input.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&input)
            .map_err(|e| ActionError::new("invalid_input", format!("input is not JSON: {e}")))?
    };
    let output = A::run(input)?;
    Ok(output.to_string())
}

/// Exports a type implementing [`Action`] as the component's `run` function.
#[macro_export]
macro_rules! export_action {
    ($action:ty) => {
        #[doc(hidden)]
        struct __SandbotActionExport;

        impl $crate::bindings::Guest for __SandbotActionExport {
            fn run(input: String) -> Result<String, $crate::bindings::ActionError> {
                $crate::__run::<$action>(input)
            }
        }

        $crate::bindings::__export_action_world!(__SandbotActionExport);
    };
}
