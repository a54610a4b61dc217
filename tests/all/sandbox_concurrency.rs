//! Many misbehaving guests at once: each is classified, the host keeps serving.

use std::time::Duration;

use sandbot::sandbox::{FailureKind, Invocation, Limits, Sandbox, SandboxConfig};
use serde_json::json;

use crate::common::{SANDBOX, guest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_spinning_guests_are_classified_while_a_normal_one_completes() {
    let module = guest("test-guest");
    let mut spin_limits = Limits::deny_all();
    spin_limits.fuel = u64::MAX / 4;
    spin_limits.timeout = Duration::from_millis(1500);
    let spinners: Vec<_> = (0..200)
        .map(|_| {
            let (module, limits) = (module.clone(), spin_limits.clone());
            tokio::spawn(async move {
                SANDBOX
                    .invoke(&module, Invocation::new(json!({"case": "spin"})), &limits)
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let normal = SANDBOX
        .invoke(
            &module,
            Invocation::new(json!({"case": "echo", "x": 1})),
            &Limits::deny_all(),
        )
        .await;
    assert!(normal.is_ok(), "{normal:?}");
    assert_eq!(normal.output, json!({"case": "echo", "x": 1}));

    for s in spinners {
        let outcome = s.await.expect("the host task survives");
        assert_eq!(outcome.kind(), Some(FailureKind::Timeout), "{outcome:?}");
    }
    // And the host still serves afterwards.
    let after = SANDBOX
        .invoke(
            &module,
            Invocation::new(json!({"case": "noop"})),
            &Limits::deny_all(),
        )
        .await;
    assert!(after.is_ok(), "{after:?}");
}

/// With every slot taken, a call waits for one within its own deadline, or ends
/// with `timeout` saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_makes_callers_wait_within_their_deadline() {
    let sandbox = std::sync::Arc::new(
        Sandbox::new(SandboxConfig {
            max_instances: 1,
            cache_dir: None,
            ..SandboxConfig::default()
        })
        .unwrap(),
    );
    let bytes =
        std::fs::read(crate::common::repo().join("guest-sdk/artifacts/test-guest.wasm")).unwrap();
    let module = sandbox.load(&bytes).unwrap();
    let mut spin = Limits::deny_all();
    spin.fuel = u64::MAX / 4;
    spin.timeout = Duration::from_millis(600);
    let busy = {
        let (sandbox, module) = (sandbox.clone(), module.clone());
        tokio::spawn(async move {
            sandbox
                .invoke(&module, Invocation::new(json!({"case": "spin"})), &spin)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut short = Limits::deny_all();
    short.timeout = Duration::from_millis(100);
    let starved = sandbox
        .invoke(&module, Invocation::new(json!({"case": "noop"})), &short)
        .await;
    let error = starved.error.expect("no slot within 100 ms");
    assert_eq!(error.kind, FailureKind::Timeout);
    assert_eq!(
        error.message,
        "no sandbox slot freed up within the 100 ms deadline (all 1 slots busy: raise `maxInstances` or lower the load)"
    );

    let mut patient = Limits::deny_all();
    patient.timeout = Duration::from_secs(5);
    let waited = sandbox
        .invoke(&module, Invocation::new(json!({"case": "noop"})), &patient)
        .await;
    assert!(waited.is_ok(), "{waited:?}");
    assert_eq!(busy.await.unwrap().kind(), Some(FailureKind::Timeout));
}
