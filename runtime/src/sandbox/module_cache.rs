//! Components compiled once: in memory by content hash, and on disk by content
//! hash plus the engine's compatibility hash (a new wasmtime or new settings
//! never load a stale artifact).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use sandbot_host_api::ActionState;
use sandbot_host_api::bindings::ActionPre;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::componentize::{componentize, is_component};

/// A loaded action module, ready to instantiate.
pub struct ActionModule {
    pub(crate) pre: ActionPre<ActionState>,
    /// SHA-256 of the bytes it was loaded from (hex).
    pub digest: String,
}

impl std::fmt::Debug for ActionModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionModule")
            .field("digest", &self.digest)
            .finish()
    }
}

pub(crate) struct ModuleCache {
    dir: Option<PathBuf>,
    compat: String,
    loaded: Mutex<HashMap<String, Arc<ActionModule>>>,
}

impl ModuleCache {
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Self {
            dir,
            compat: format!("{:016x}", h.finish()),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    pub fn load(
        &self,
        engine: &Engine,
        linker: &Linker<ActionState>,
        bytes: &[u8],
    ) -> anyhow::Result<Arc<ActionModule>> {
        let digest = hex::encode(Sha256::digest(bytes));
        if let Some(m) = self.loaded.lock().expect("module cache lock").get(&digest) {
            return Ok(m.clone());
        }
        // A core module turned into a component here has the adapter's few
        // instances; a component from another toolchain is checked.
        if is_component(bytes) {
            super::pool_fit::check_instances(bytes)?;
        }
        let component = self.compile(engine, bytes, &digest)?;
        super::pool_fit::check_resources(&component)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .context("the module does not fit the sandbot:action world")?;
        let pre = ActionPre::new(pre)
            .map_err(anyhow::Error::from)
            .context("the module does not export `run` from the sandbot:action world")?;
        let module = Arc::new(ActionModule {
            pre,
            digest: digest.clone(),
        });
        self.loaded
            .lock()
            .expect("module cache lock")
            .insert(digest, module.clone());
        Ok(module)
    }

    fn compile(&self, engine: &Engine, bytes: &[u8], digest: &str) -> anyhow::Result<Component> {
        let cached = self
            .dir
            .as_ref()
            .map(|d| d.join(format!("{digest}-{}.cwasm", self.compat)));
        if let Some(path) = &cached {
            // Read, not mmap: a cache file truncated by someone else must not be
            // able to crash the process (SIGBUS on a vanished mapping).
            if let Ok(compiled) = std::fs::read(path) {
                // SAFETY: the bytes come from `Component::serialize` of an engine with
                // the same compatibility hash (it is in the file name), in a cache
                // folder owned by this user; wasmtime checks the header and version.
                match unsafe { Component::deserialize(engine, &compiled) } {
                    Ok(c) => return Ok(c),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable cached component")
                    }
                }
            }
        }
        let component_bytes;
        let bytes = if is_component(bytes) {
            bytes
        } else {
            component_bytes =
                componentize(bytes).context("turning the core module into a component")?;
            &component_bytes
        };
        let component = Component::new(engine, bytes)
            .map_err(anyhow::Error::from)
            .context("compiling the component")?;
        if let Some(path) = &cached {
            let written = component
                .serialize()
                .map_err(anyhow::Error::from)
                .and_then(|b| Ok(write_atomically(path, &b)?));
            if let Err(e) = written {
                tracing::warn!(path = %path.display(), error = %e, "could not cache the compiled component");
            }
        }
        Ok(component)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache files live in a folder");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("c"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
