//! A component's copy-on-write memory images, built when it is loaded rather
//! than at its first instantiation.
//!
//! On Linux wasmtime writes each image into a memfd and seals it. Sealing can
//! fail with `EBUSY` while the kernel still counts an extra reference to a
//! page just written (seen on a busy two-core CI machine: `cannot add seals to
//! the memfd: Device or resource busy`). Built lazily, that failure reached a
//! bot's action as a crash; built here it is retried with a fresh memfd, and a
//! module whose image still cannot be built keeps the copy it has.

use std::time::Duration;

use wasmtime::component::Component;

/// Waits before each further try: a little over a second in all.
const WAITS_MS: [u64; 4] = [10, 50, 250, 1000];

/// Builds `component`'s memory images now, trying again while the kernel
/// answers busy.
pub(crate) fn build(component: &Component) -> anyhow::Result<()> {
    retry_while_busy(&WAITS_MS, || {
        component
            .initialize_copy_on_write_image()
            .map_err(anyhow::Error::from)
    })
}

/// Runs `attempt` until it succeeds, fails for another reason than `EBUSY`,
/// or has waited each of `waits_ms` once.
fn retry_while_busy(
    waits_ms: &[u64],
    mut attempt: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut waits = waits_ms.iter();
    loop {
        match attempt() {
            Err(e) if is_busy(&e) => match waits.next() {
                Some(ms) => std::thread::sleep(Duration::from_millis(*ms)),
                None => return Err(e.context("building the module's memory image")),
            },
            other => return other,
        }
    }
}

fn is_busy(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(libc::EBUSY))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error shaped like the memfd crate's: a message over an `io::Error`.
    #[derive(Debug)]
    struct Sealing(std::io::Error);

    impl std::fmt::Display for Sealing {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cannot add seals to the memfd")
        }
    }

    impl std::error::Error for Sealing {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn failure(errno: i32) -> anyhow::Error {
        Sealing(std::io::Error::from_raw_os_error(errno)).into()
    }

    #[test]
    fn a_busy_kernel_is_tried_again_until_it_is_not() {
        let mut tries = 0;
        let out = retry_while_busy(&[0, 0, 0], || {
            tries += 1;
            if tries < 3 {
                Err(failure(libc::EBUSY))
            } else {
                Ok(())
            }
        });
        assert!(out.is_ok(), "{out:?}");
        assert_eq!(tries, 3);
    }

    #[test]
    fn a_kernel_busy_every_time_is_given_up_with_its_cause() {
        let mut tries = 0;
        let e = retry_while_busy(&[0, 0], || {
            tries += 1;
            Err(failure(libc::EBUSY))
        })
        .unwrap_err();
        assert_eq!(tries, 3);
        assert_eq!(
            format!("{e:#}"),
            format!(
                "building the module's memory image: cannot add seals to the memfd: {}",
                std::io::Error::from_raw_os_error(libc::EBUSY)
            )
        );
    }

    #[test]
    fn other_failures_are_not_tried_again() {
        let mut tries = 0;
        let e = retry_while_busy(&[0, 0], || {
            tries += 1;
            Err(failure(libc::ENOMEM))
        })
        .unwrap_err();
        assert_eq!(tries, 1);
        assert!(!is_busy(&e));
    }
}
