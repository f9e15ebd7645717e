//! CPU-heavy work a caller can trigger, such as password hashing: at most one task per core runs
//! at a time in the whole process; up to [`MAX_QUEUED_PER_CORE`] per core wait their turn, each for
//! at most [`QUEUE_DEADLINE`]; the rest are refused at once ([`CpuError::Busy`], which services
//! answer as unavailable with a time to retry). An unauthenticated flood of logins or
//! share-password guesses then neither takes every core (and Argon2id's 19 MiB each) from the
//! service's other requests nor queues without bound.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use coffer_config::LoadLimits;

use crate::admission::Admission;

/// Tasks that may wait per core.
pub const MAX_QUEUED_PER_CORE: usize = 32;
/// The longest a task waits for a core.
pub const QUEUE_DEADLINE: Duration = Duration::from_secs(5);

static ADMISSION: LazyLock<Arc<Admission>> = LazyLock::new(|| {
    Admission::of(
        "cpu",
        &LoadLimits {
            max_in_flight: permits(),
            max_queued: permits() * MAX_QUEUED_PER_CORE,
            queue_deadline_ms: QUEUE_DEADLINE.as_millis() as u64,
            ..LoadLimits::default()
        },
    )
});

/// Why CPU-heavy work was not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CpuError {
    /// Too much is waiting already, or no core came free in time: try again later.
    #[error("too much CPU-heavy work is waiting; try again")]
    Busy,
    /// The task panicked.
    #[error("the task failed")]
    Failed,
}

/// Runs `f` on the blocking pool once one of the process's per-core slots is free. The slot goes
/// with the work, not with the caller: a caller that gives up (a client that disconnected) does
/// not free it while the hash still runs.
pub async fn bounded<T, F>(f: F) -> Result<T, CpuError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot = ADMISSION.admit().await.map_err(|_| CpuError::Busy)?;
    tokio::task::spawn_blocking(move || {
        let _held = slot;
        f()
    })
    .await
    .map_err(|_| CpuError::Failed)
}

/// The number of tasks [`bounded`] runs at once.
pub fn permits() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZero::get)
        .unwrap_or(2)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn no_more_than_one_task_per_core_runs_at_once() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..super::permits() * 4)
            .map(|_| {
                let (running, peak) = (running.clone(), peak.clone());
                tokio::spawn(super::bounded(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), super::permits());
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_does_not_free_a_running_tasks_permit() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let work = |running: Arc<AtomicUsize>, peak: Arc<AtomicUsize>| {
            move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(200));
                running.fetch_sub(1, Ordering::SeqCst);
            }
        };
        // Callers that start work and give up at once, as disconnecting clients do.
        for _ in 0..super::permits() * 3 {
            let f = super::bounded(work(running.clone(), peak.clone()));
            let _ = tokio::time::timeout(Duration::from_millis(20), f).await;
        }
        // Then callers that wait: the abandoned tasks still hold their permits.
        let waiting: Vec<_> = (0..super::permits())
            .map(|_| tokio::spawn(super::bounded(work(running.clone(), peak.clone()))))
            .collect();
        for t in waiting {
            t.await.unwrap().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= super::permits());
    }

    #[tokio::test]
    async fn beyond_the_queue_work_is_refused_at_once_and_the_rest_is_done() {
        let cap = super::permits() * (1 + super::MAX_QUEUED_PER_CORE);
        let tasks: Vec<_> = (0..cap + 10)
            .map(|_| {
                tokio::spawn(super::bounded(|| {
                    std::thread::sleep(Duration::from_millis(5));
                }))
            })
            .collect();
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => {}
                Err(super::CpuError::Busy) => busy += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(
            busy >= 10,
            "at least the ten beyond the queue were refused: {busy}"
        );
        assert!(
            busy < cap,
            "the queued ones were done: {busy} of {}",
            cap + 10
        );
    }
}
