//! Components compiled once: in memory by content hash, and on disk by content
//! hash plus the engine's compatibility hash (a new wasmtime or new settings
//! never load a stale artifact).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;
use sandbot_host_api::ActionState;
use sandbot_host_api::bindings::ActionPre;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::componentize::{componentize, is_component};
use super::memory_image;

/// A loaded action module, ready to instantiate.
pub struct ActionModule {
    /// Replaced by a fresh copy when the pool's idle memory is released
    /// (see [`super::trim`]); invocations in flight keep the copy they took.
    pre: RwLock<ActionPre<ActionState>>,
    /// SHA-256 of the bytes it was loaded from (hex).
    pub digest: String,
    /// The compiled artifact in the cache folder, from which a fresh copy is
    /// loaded; `None` without a cache folder (the module is then not recycled).
    compiled: Option<PathBuf>,
}

impl ActionModule {
    /// The instance-ready component (a cheap clone).
    pub(crate) fn pre(&self) -> ActionPre<ActionState> {
        self.pre.read().expect("module lock").clone()
    }
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
        if let Err(e) = memory_image::build(&component) {
            tracing::warn!(digest = %digest, error = %format!("{e:#}"), "the module's memory image is left to its first run");
        }
        let pre = prepare(linker, &component)?;
        let compiled = self.cached_path(&digest).filter(|p| p.is_file());
        let module = Arc::new(ActionModule {
            pre: RwLock::new(pre),
            digest: digest.clone(),
            compiled,
        });
        self.loaded
            .lock()
            .expect("module cache lock")
            .insert(digest, module.clone());
        Ok(module)
    }

    /// Gives every loaded module that has a compiled artifact a fresh copy
    /// of its component, loaded from the cache folder. The old copies go
    /// when the invocations using them end, and with them (wasmtime purges a
    /// dropped module's slots) every pool slot's pages kept for them.
    /// Modules nothing uses any more (a bot's old plugin after a reload) are
    /// forgotten instead. Returns how many were replaced.
    pub fn recycle(&self, engine: &Engine, linker: &Linker<ActionState>) -> usize {
        let modules: Vec<Arc<ActionModule>> = {
            let mut loaded = self.loaded.lock().expect("module cache lock");
            loaded.retain(|_, m| Arc::strong_count(m) > 1);
            loaded.values().cloned().collect()
        };
        let mut replaced = 0;
        for m in modules {
            let Some(path) = &m.compiled else { continue };
            let fresh = read_compiled(engine, path)
                .ok_or_else(|| anyhow::anyhow!("the compiled artifact could not be read"))
                .and_then(|c| {
                    // The old copy stays if the fresh one's image fails.
                    memory_image::build(&c)?;
                    prepare(linker, &c)
                });
            match fresh {
                Ok(pre) => {
                    *m.pre.write().expect("module lock") = pre;
                    replaced += 1;
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "could not reload a module to release its idle memory")
                }
            }
        }
        replaced
    }

    fn cached_path(&self, digest: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{digest}-{}.cwasm", self.compat)))
    }

    fn compile(&self, engine: &Engine, bytes: &[u8], digest: &str) -> anyhow::Result<Component> {
        let cached = self.cached_path(digest);
        if let Some(c) = cached.as_deref().and_then(|p| read_compiled(engine, p)) {
            return Ok(c);
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

/// The component compiled into `path`, if it can be read.
fn read_compiled(engine: &Engine, path: &Path) -> Option<Component> {
    // Read, not mmap: a cache file truncated by someone else must not be
    // able to crash the process (SIGBUS on a vanished mapping).
    let compiled = std::fs::read(path).ok()?;
    // SAFETY: the bytes come from `Component::serialize` of an engine with
    // the same compatibility hash (it is in the file name), in a cache
    // folder owned by this user; wasmtime checks the header and version.
    match unsafe { Component::deserialize(engine, &compiled) } {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable cached component");
            None
        }
    }
}

/// `component` linked against the host API, checked to be an action.
fn prepare(
    linker: &Linker<ActionState>,
    component: &Component,
) -> anyhow::Result<ActionPre<ActionState>> {
    let pre = linker
        .instantiate_pre(component)
        .map_err(anyhow::Error::from)
        .context("the module does not fit the sandbot:action world")?;
    ActionPre::new(pre)
        .map_err(anyhow::Error::from)
        .context("the module does not export `run` from the sandbot:action world")
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
