//! The background work of a service: periodic jobs (sweeps, retention, reapers) and long-running
//! tasks (workers, listeners), owned by the service app and stopped with it.
//!
//! [`Jobs::every`] runs a job at once and then every period; on shutdown the loop ends at its
//! next wait, so a run in progress may finish. [`Jobs::spawn`] runs a task that watches a
//! [`Stop`]. The app signals the stop when its shutdown starts ([`Jobs::stopper`]), while calls
//! drain; [`Jobs::shutdown`] then waits up to the grace period and aborts what is left (a scan job
//! cut there is taken again by the reaper when its lease ends). Dropping [`Jobs`] aborts
//! everything at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

/// What a background task watches to know that the service is stopping.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Whether the service is stopping.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the service is stopping.
    pub async fn stopped(&mut self) {
        // An error means the sender is gone: the service is gone too.
        let _ = self.0.wait_for(|stopped| *stopped).await;
    }
}

/// A service's background tasks.
#[derive(Debug)]
pub struct Jobs {
    stop: Arc<watch::Sender<bool>>,
    tasks: JoinSet<()>,
    names: Vec<&'static str>,
}

impl Default for Jobs {
    fn default() -> Self {
        Self::new()
    }
}

impl Jobs {
    pub fn new() -> Self {
        Jobs {
            stop: Arc::new(watch::Sender::new(false)),
            tasks: JoinSet::new(),
            names: Vec::new(),
        }
    }

    /// The names of the tasks started, in order (for logs and tests).
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// Signals every task to stop, at once (a shutdown starting); [`Jobs::shutdown`] then waits.
    pub fn stopper(&self) -> impl Fn() + Send + Sync + 'static {
        let stop = self.stop.clone();
        move || {
            stop.send_replace(true);
        }
    }

    /// A [`Stop`] for work started elsewhere that must end with the service.
    pub fn stop(&self) -> Stop {
        Stop(self.stop.subscribe())
    }

    /// Runs `job` now and then every `period` until the service stops. A job returns how many
    /// items it dealt with (logged when not zero) or an error (logged; the next period retries).
    pub fn every<F, Fut, E>(&mut self, name: &'static str, period: Duration, mut job: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<usize, E>> + Send + 'static,
        E: std::fmt::Debug + Send + 'static,
    {
        let period = period.max(Duration::from_millis(1));
        self.spawn(name, move |mut stop| async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    () = stop.stopped() => return,
                    _ = tick.tick() => {}
                }
                match job().await {
                    Ok(0) => {}
                    Ok(items) => tracing::info!(job = name, items, "background job did work"),
                    Err(error) => {
                        tracing::warn!(job = name, ?error, "background job failed; will retry");
                    }
                }
            }
        });
    }

    /// Runs a long-lived task; it must return soon after its [`Stop`] fires.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(Stop) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.names.push(name);
        self.tasks.spawn(task(self.stop()));
    }

    /// Signals every task to stop, waits up to `grace` for them, then aborts the rest.
    pub async fn shutdown(mut self, grace: Duration) {
        self.stop.send_replace(true);
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                left = self.tasks.len(),
                "background jobs still running after the grace period; aborting them"
            );
            self.tasks.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn periodic_jobs_run_until_shutdown_and_not_after() {
        let runs = Arc::new(AtomicUsize::new(0));
        let mut jobs = Jobs::new();
        let counter = runs.clone();
        jobs.every("count", Duration::from_millis(5), move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(0)
            }
        });
        tokio::time::sleep(Duration::from_millis(60)).await;
        jobs.shutdown(Duration::from_secs(1)).await;
        let after_stop = runs.load(Ordering::SeqCst);
        assert!(after_stop >= 2, "ran {after_stop} times");
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            after_stop,
            "nothing runs after shutdown"
        );
    }

    #[tokio::test]
    async fn a_run_in_progress_finishes_and_a_stuck_task_is_aborted() {
        let finished = Arc::new(AtomicUsize::new(0));
        let mut jobs = Jobs::new();
        let done = finished.clone();
        jobs.spawn("polite", move |mut stop| async move {
            stop.stopped().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            done.fetch_add(1, Ordering::SeqCst);
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        jobs.spawn("stuck", move |_| async move {
            let _keep = tx;
            std::future::pending::<()>().await;
        });
        assert_eq!(jobs.names(), ["polite", "stuck"]);
        let started = std::time::Instant::now();
        jobs.shutdown(Duration::from_millis(200)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            finished.load(Ordering::SeqCst),
            1,
            "the polite task finished its work"
        );
        assert!(
            rx.await.is_err(),
            "the stuck task was aborted (its sender dropped)"
        );
    }
}
