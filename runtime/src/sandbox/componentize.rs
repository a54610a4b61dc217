//! Turns a core module built for wasm32-wasip1 (with wit-bindgen's component
//! type section) into a component, with the preview1 reactor adapter. Plugin
//! authors can hand Sandbot either form.

use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;

/// Is `bytes` a component (as opposed to a core module)?
pub fn is_component(bytes: &[u8]) -> bool {
    wasmparser::Parser::is_component(bytes)
}

/// Encodes the core module `bytes` as a component.
pub fn componentize(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    if !wasmparser::Parser::is_core_wasm(bytes) {
        anyhow::bail!("not a WebAssembly module or component (bad magic number or version)");
    }
    wit_component::ComponentEncoder::default()
        .module(bytes)?
        .adapter(
            "wasi_snapshot_preview1",
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .validate(true)
        .encode()
}
