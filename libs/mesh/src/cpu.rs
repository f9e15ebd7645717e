//! CPU-heavy work a caller can trigger, such as password hashing: at most one task per core runs
//! at a time in the whole process; the rest wait their turn. An unauthenticated flood of logins
//! or share-password guesses then queues up instead of taking every core (and Argon2id's 19 MiB
//! each) from the service's other requests.

use std::sync::{Arc, LazyLock};

use tokio::sync::Semaphore;

static PERMITS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(permits())));

/// Runs `f` on the blocking pool once one of the process's per-core permits is free. `None` if
/// the task panicked. The permit goes with the work, not with the caller: a caller that gives up
/// (a client that disconnected) does not free it while the hash still runs.
pub async fn bounded<T, F>(f: F) -> Option<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // The semaphore is never closed, so acquiring cannot fail.
    let permit = PERMITS.clone().acquire_owned().await.ok()?;
    tokio::task::spawn_blocking(move || {
        let _held = permit;
        f()
    })
    .await
    .ok()
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
}
