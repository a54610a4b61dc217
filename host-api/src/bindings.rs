//! The one `bindgen!` of the host: every type and trait generated from `wit/`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "sandbot:action/action",
    imports: {
        "sandbot:action/http.fetch": async | trappable,
        default: trappable,
    },
    exports: { default: async },
});

pub use sandbot::action::{budget, conversation, http, session};
