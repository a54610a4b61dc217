//! Components are compiled once and cached on disk by content hash plus the
//! engine's compatibility hash; a damaged cache file is ignored, not trusted.

use sandbot::sandbox::{Invocation, Limits, Sandbox, SandboxConfig};
use serde_json::json;

use crate::common::repo;

fn sandbox(dir: &std::path::Path) -> Sandbox {
    Sandbox::new(SandboxConfig {
        max_instances: 2,
        cache_dir: Some(dir.to_path_buf()),
        ..SandboxConfig::default()
    })
    .unwrap()
}

fn cached_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(repo().join("guest-sdk/artifacts/test-guest.wasm")).unwrap();

    let first = sandbox(dir.path());
    let module = first.load(&bytes).unwrap();
    let files = cached_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].starts_with(&module.digest) && files[0].ends_with(".cwasm"),
        "{files:?}"
    );
    let again = first.load(&bytes).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&module, &again),
        "loaded once per process"
    );

    // A second process (a new sandbox) reads the cached file.
    let second = sandbox(dir.path());
    let module = second.load(&bytes).unwrap();
    let out = second
        .invoke(
            &module,
            Invocation::new(json!({"case": "noop"})),
            &Limits::deny_all(),
        )
        .await;
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(cached_files(dir.path()), files);

    // A damaged cache file is ignored and replaced.
    std::fs::write(dir.path().join(&files[0]), b"not a compiled component").unwrap();
    let third = sandbox(dir.path());
    let module = third.load(&bytes).unwrap();
    let out = third
        .invoke(
            &module,
            Invocation::new(json!({"case": "noop"})),
            &Limits::deny_all(),
        )
        .await;
    assert!(out.is_ok(), "{out:?}");
}

#[test]
fn core_modules_are_componentized_and_garbage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path());
    let err = sb.load(b"definitely not wasm").unwrap_err();
    assert!(
        format!("{err:#}").contains("not a WebAssembly module or component"),
        "{err:#}"
    );
    // A valid module that does not implement the world is refused with a reason.
    let empty_module = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    let err = sb.load(&empty_module).unwrap_err();
    assert!(
        format!("{err:#}").contains("componentizing")
            || format!("{err:#}").contains("sandbot:action"),
        "{err:#}"
    );
}
