//! The API action as a built-in guest.
//!
//! Input: the action's configuration (see [`config::ApiAction`]). The guest
//! resolves the typed rows through the session, calls the URL through the host's
//! `http.fetch` (under the tenant's egress policy) and applies the response in
//! Chatlayer's order: session, then messages, then navigation.

mod config;
mod request;
mod response;

use sandbot_sdk::{Action, ActionError, Value};

struct ApiAction;

impl Action for ApiAction {
    fn run(input: Value) -> Result<Value, ActionError> {
        let action: config::ApiAction = sandbot_sdk::args(input)?;
        let res = request::build(&action)?.send()?;
        response::apply(&res)
    }
}

sandbot_sdk::export_action!(ApiAction);
