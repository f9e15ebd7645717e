//! Admission control, the one way every server of the mesh (and the gateway) bounds its work
//! (`[limits]`, [`LoadLimits`]): at most `max_in_flight` requests are handled at once; up to
//! `max_queued` more wait for a slot, each for at most `queue_deadline_ms`; anything beyond is
//! refused at once with a time to retry. A refusal costs microseconds, so a flood several times
//! the sustainable rate does not take the cores from the requests already admitted: goodput
//! stays near the peak, the admitted requests' latency stays bounded by the queue's deadline plus
//! the work in flight, and memory stays flat (nothing queues without bound).
//!
//! A slot is held until the response's head is ready: a streamed body (an audit export, an event
//! stream) does not keep it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coffer_config::LoadLimits;
use coffer_telemetry::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Seconds a refused caller is told to wait before trying again.
pub const RETRY_AFTER_SECS: u32 = 1;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Shed {
    #[error("the server is full: too many requests are waiting")]
    QueueFull,
    #[error("the server is full: no slot within the queue's deadline")]
    Deadline,
}

impl Shed {
    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Shed::QueueFull => "queue_full",
            Shed::Deadline => "deadline",
        }
    }

    /// The gRPC answer: `UNAVAILABLE`, with the time to retry.
    pub fn status(self) -> tonic::Status {
        coffer_errors::unavailable_retry("the service is busy; try again", RETRY_AFTER_SECS)
    }
}

/// A server's admission control.
#[derive(Debug)]
pub struct Admission {
    /// What is admitted (the metrics' `kind` label): `requests`, or `cpu` for [`crate::cpu`].
    kind: &'static str,
    /// This kind's gauges, looked up once rather than per request.
    in_flight: Gauge,
    queued: Gauge,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_queued: usize,
    deadline: Duration,
}

/// An admitted request's slot, freed on drop.
#[derive(Debug)]
pub struct Admitted {
    _slot: OwnedSemaphorePermit,
    _count: InFlight,
}

#[derive(Debug)]
struct InFlight(Gauge);

impl InFlight {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One waiter in the queue, counted out on drop (a waiter whose caller gave up included).
struct Waiting<'a>(&'a AtomicUsize, &'a Gauge);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        self.1.dec();
    }
}

impl Admission {
    /// A server's admission of requests.
    pub fn new(limits: &LoadLimits) -> Arc<Self> {
        Self::of("requests", limits)
    }

    /// Admission of another `kind` of work (its metrics' label).
    pub fn of(kind: &'static str, limits: &LoadLimits) -> Arc<Self> {
        Arc::new(Admission {
            kind,
            in_flight: coffer_telemetry::metrics().in_flight(kind),
            queued: coffer_telemetry::metrics().queued(kind),
            slots: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
            waiting: AtomicUsize::new(0),
            max_queued: limits.max_queued,
            deadline: Duration::from_millis(limits.queue_deadline_ms.max(1)),
        })
    }

    /// A slot now, or after waiting in the queue; refused when the queue is full or the deadline
    /// passes first. Refusals are counted (`coffer_load_shed_total{kind,reason}`).
    pub async fn admit(&self) -> Result<Admitted, Shed> {
        let got = self.wait_for_slot().await;
        if let Err(shed) = got {
            coffer_telemetry::metrics().shed(self.kind, shed.reason());
        }
        got
    }

    async fn wait_for_slot(&self) -> Result<Admitted, Shed> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(Admitted {
                _slot: slot,
                _count: InFlight::new(&self.in_flight),
            });
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_queued {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Shed::QueueFull);
        }
        self.queued.inc();
        let _waiting = Waiting(&self.waiting, &self.queued);
        match tokio::time::timeout(self.deadline, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(Admitted {
                _slot: slot,
                _count: InFlight::new(&self.in_flight),
            }),
            // The semaphore is never closed; a timeout is the deadline.
            _ => Err(Shed::Deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(in_flight: usize, queued: usize, deadline_ms: u64) -> LoadLimits {
        LoadLimits {
            max_in_flight: in_flight,
            max_queued: queued,
            queue_deadline_ms: deadline_ms,
            ..LoadLimits::default()
        }
    }

    #[tokio::test]
    async fn beyond_the_slots_and_the_queue_requests_are_refused_at_once() {
        let a = Admission::new(&limits(2, 1, 60_000));
        let one = a.admit().await.unwrap();
        let _two = a.admit().await.unwrap();
        // The third waits in the queue; the fourth finds the queue full.
        let a2 = a.clone();
        let third = tokio::spawn(async move { a2.admit().await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        assert_eq!(a.admit().await.unwrap_err(), Shed::QueueFull);
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "refused without waiting"
        );
        // A slot freed goes to the waiter.
        drop(one);
        third.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_waiter_is_refused_when_its_deadline_passes_and_leaves_the_queue() {
        let a = Admission::new(&limits(1, 1, 100));
        let _held = a.admit().await.unwrap();
        let started = std::time::Instant::now();
        assert_eq!(a.admit().await.unwrap_err(), Shed::Deadline);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100) && waited < Duration::from_secs(2));
        // The refused waiter left the queue: the next one may wait again (not `QueueFull`).
        assert_eq!(a.admit().await.unwrap_err(), Shed::Deadline);
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_frees_its_place_in_the_queue() {
        let a = Admission::new(&limits(1, 1, 60_000));
        let held = a.admit().await.unwrap();
        let _ = tokio::time::timeout(Duration::from_millis(20), a.admit()).await;
        // Its place is free: this one queues and gets the slot when it is released.
        let a2 = a.clone();
        let next = tokio::spawn(async move { a2.admit().await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        next.await.unwrap().unwrap();
    }

    #[test]
    fn a_refusal_is_unavailable_with_a_time_to_retry() {
        let status = Shed::QueueFull.status();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(coffer_errors::retry_after(&status), Some(RETRY_AFTER_SECS));
    }
}
