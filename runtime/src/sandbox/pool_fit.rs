//! Whether a component fits the instance pool's per-component slots: core
//! module instances, memories and tables. Checked when it is loaded, so a
//! component that cannot be instantiated says which limit it passes (instead
//! of failing each invocation with the pool's own message).

use anyhow::bail;
use wasmparser::{Parser, Payload};
use wasmtime::component::Component;

/// Core instances a component may hold: componentize-py's output (CPython,
/// its libraries and the WASI adapter) needs 14, componentize-js's and
/// wit-component's fewer.
pub const CORE_INSTANCES_PER_COMPONENT: u32 = 24;
pub const MEMORIES_PER_COMPONENT: u32 = 2;
pub const TABLES_PER_COMPONENT: u32 = 8;

/// Core module instances a component (and the components nested in it)
/// creates by instantiating a module.
pub fn core_instances(bytes: &[u8]) -> anyhow::Result<u32> {
    let mut n = 0;
    for payload in Parser::new(0).parse_all(bytes) {
        if let Payload::InstanceSection(reader) = payload? {
            // Instances made of exports (`FromExports`) are no module's.
            for instance in reader {
                if matches!(instance?, wasmparser::Instance::Instantiate { .. }) {
                    n += 1;
                }
            }
        }
    }
    Ok(n)
}

/// `Err` naming the limit when the component in `bytes` creates more core
/// instances than a pool slot holds (checked before compiling it).
pub fn check_instances(bytes: &[u8]) -> anyhow::Result<()> {
    let instances = core_instances(bytes)?;
    if instances > CORE_INSTANCES_PER_COMPONENT {
        bail!(
            "the component creates {instances} core module instances; the sandbox allows {CORE_INSTANCES_PER_COMPONENT} per component (pool limit `max_core_instances_per_component`)"
        );
    }
    Ok(())
}

/// `Err` naming the limit when the compiled component needs more memories
/// or tables than a pool slot holds.
pub fn check_resources(component: &Component) -> anyhow::Result<()> {
    if let Some(r) = component.resources_required() {
        if r.num_memories > MEMORIES_PER_COMPONENT {
            bail!(
                "the component defines {} linear memories; the sandbox allows {MEMORIES_PER_COMPONENT} per component (pool limit `max_memories_per_component`)",
                r.num_memories
            );
        }
        if r.num_tables > TABLES_PER_COMPONENT {
            bail!(
                "the component defines {} tables; the sandbox allows {TABLES_PER_COMPONENT} per component (pool limit `max_tables_per_component`)",
                r.num_tables
            );
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    /// A component with one empty core module instantiated `n` times.
    pub fn component_with_instances(n: u8) -> Vec<u8> {
        assert!(n < 42, "one-byte section size");
        let mut c = b"\0asm\x0d\x00\x01\x00".to_vec();
        // core module section: an empty module
        c.extend([0x01, 0x08]);
        c.extend(b"\0asm\x01\0\0\0");
        // core instance section: n × instantiate module 0 with no args
        c.extend([0x02, 1 + 3 * n, n]);
        for _ in 0..n {
            c.extend([0x00, 0x00, 0x00]);
        }
        c
    }

    #[test]
    fn a_component_past_the_instance_limit_is_refused_at_load_naming_it() {
        let sandbox = crate::sandbox::Sandbox::new(crate::sandbox::SandboxConfig {
            max_instances: 2,
            cache_dir: None,
            ..Default::default()
        })
        .unwrap();
        let over = component_with_instances(super::CORE_INSTANCES_PER_COMPONENT as u8 + 1);
        let e = format!("{:#}", sandbox.load(&over).unwrap_err());
        assert_eq!(
            e,
            "the component creates 25 core module instances; the sandbox allows 24 per component (pool limit `max_core_instances_per_component`)"
        );
        // Within the limit it passes the pool check (and fails only for not
        // being an action).
        let inside = component_with_instances(super::CORE_INSTANCES_PER_COMPONENT as u8);
        let e = format!("{:#}", sandbox.load(&inside).unwrap_err());
        assert!(
            e.contains("does not export `run` from the sandbot:action world"),
            "{e}"
        );
    }

    #[test]
    fn counts_core_instances() {
        assert_eq!(
            super::core_instances(&component_with_instances(3)).unwrap(),
            3
        );
        assert_eq!(
            super::core_instances(&component_with_instances(30)).unwrap(),
            30
        );
    }
}
