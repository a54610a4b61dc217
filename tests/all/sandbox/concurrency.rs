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

/// A JS code action for the flow runner.
fn js(source: &str) -> sandbot::flow::ActionCall {
    sandbot::flow::ActionCall::Code {
        name: "a.js".into(),
        source: source.into(),
        args: json!({}),
    }
}

/// A tenant's cap on actions at once, both ways: under it each action gets
/// its own deadline; a caller over it waits within its deadline (and is
/// served when a slot frees in time), or ends with `timeout` naming the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_action_cap_waits_within_its_deadline() {
    use sandbot::flow::ActionRunner;
    use sandbot::runner::SandboxRunner;
    use std::sync::Arc;

    let sandbox = crate::flow::conversations::SANDBOX.clone();
    let mut limits = Limits::deny_all();
    limits.fuel = u64::MAX / 4;
    limits.timeout = Duration::from_millis(800);
    let session = json!({});
    let spin = "while (true) {}";
    let done = "return 'ok';";
    let cap_message = "this tenant already runs 1 actions at once (maxConcurrentActions) and none finished within the 800 ms deadline";

    // Inside the cap (2): two spinners each run to their own deadline.
    let two = Arc::new(SandboxRunner::new(sandbox.clone(), limits.clone()).with_cap(2));
    let (a, b) = tokio::join!(two.run(js(spin), &session), two.run(js(spin), &session));
    for outcome in [a, b] {
        let failure = outcome.result.unwrap_err();
        assert_eq!(failure.kind, "timeout");
        assert!(
            !failure.message.contains("maxConcurrentActions"),
            "{failure:?}"
        );
    }

    // Over the cap (1): a quick action behind a spinner waits, then runs.
    let one = Arc::new(SandboxRunner::new(sandbox.clone(), limits.clone()).with_cap(1));
    let (spun, quick) = tokio::join!(one.run(js(spin), &session), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        one.run(js(done), &session).await
    });
    assert_eq!(spun.result.unwrap_err().kind, "timeout");
    assert!(quick.result.is_ok(), "{:?}", quick.result);

    // Over the cap with no slot freeing in time: the cap is named.
    let (a, b, c) = tokio::join!(
        one.run(js(spin), &session),
        one.run(js(spin), &session),
        one.run(js(spin), &session)
    );
    let failures = [a, b, c].map(|o| o.result.unwrap_err());
    assert!(failures.iter().all(|f| f.kind == "timeout"), "{failures:?}");
    assert!(
        failures.iter().any(|f| f.message == cap_message),
        "{failures:?}"
    );
}

/// A tenant's cap on the memory its running actions hold together, both
/// ways: one action that holds 24 MiB runs under a 64 MiB cap; a second one
/// at the same time finds the cap full and fails with `memory_limit` naming
/// it, while another tenant's action is not affected; once the first ends
/// its memory is given back and the next one runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_memory_cap_gets_a_classified_error() {
    use sandbot::flow::ActionRunner;
    use sandbot::runner::SandboxRunner;
    use sandbot_host_api::MemoryBudget;
    use std::sync::Arc;

    let sandbox = crate::flow::conversations::SANDBOX.clone();
    let budget = MemoryBudget::new(64 << 20);
    let mut limits = Limits::deny_all();
    limits.timeout = Duration::from_secs(5);
    // The actions below wait by spinning on the clock: their fuel depends
    // on the machine's speed, and fuel is not what this test is about.
    limits.fuel = 50_000_000_000;
    limits.memory_budget = Some(budget.clone());
    let tenant = Arc::new(SandboxRunner::new(sandbox.clone(), limits.clone()));
    let mut other_limits = limits.clone();
    other_limits.memory_budget = Some(MemoryBudget::new(64 << 20));
    let other = Arc::new(SandboxRunner::new(sandbox.clone(), other_limits));
    let session = json!({});
    // Holds 24 MiB for 600 ms, then returns.
    let hold = "const a = new Uint8Array(24 << 20); a[7] = 1; const t = Date.now(); while (Date.now() - t < 600) {} return a[7];";

    let alone = tenant.run(js(hold), &session).await;
    assert!(alone.result.is_ok(), "{:?}", alone.result);
    assert_eq!(budget.held(), 0, "given back");

    let (first, second, theirs) = tokio::join!(
        tenant.run(js(hold), &session),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            tenant.run(js(hold), &session).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            other.run(js(hold), &session).await
        }
    );
    assert!(first.result.is_ok(), "{:?}", first.result);
    assert!(theirs.result.is_ok(), "another tenant: {:?}", theirs.result);
    let failure = second.result.unwrap_err();
    assert_eq!(failure.kind, "memory_limit", "{failure:?}");
    assert!(
        failure.message.starts_with("this tenant's actions running now hold ")
            && failure.message.ends_with(
                " MiB of memory together and this one needed more; the tenant's cap is 64 MiB (maxMemoryMib)"
            ),
        "{failure:?}"
    );
    assert_eq!(budget.held(), 0, "all given back");
    let after = tenant.run(js(hold), &session).await;
    assert!(after.result.is_ok(), "{:?}", after.result);
}
