//! The event streams a user holds open, capped per user; a slot is freed when its stream ends.
//! At shutdown every stream ends at once ([`Streams::close_all`]): a stream never finishes on its
//! own, and the graceful shutdown would otherwise wait for it until its grace ran out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Open streams per user.
#[derive(Debug, Clone)]
pub struct Streams {
    cap: usize,
    pub keep_alive: Duration,
    pub recheck: Duration,
    open: Arc<Mutex<HashMap<String, usize>>>,
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

/// One open stream; its slot is freed when dropped (the client went away).
pub struct Slot {
    user: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        crate::metrics::metrics().open_streams.dec();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

impl Streams {
    pub fn new(cap: usize, keep_alive: Duration, recheck: Duration) -> Streams {
        Streams {
            cap,
            keep_alive,
            recheck,
            open: Arc::default(),
            closing: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// Ends every open stream (and any opened later): the server is shutting down.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Streams::close_all`] was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closing = self.closing.subscribe();
        async move {
            let _ = closing.wait_for(|c| *c).await;
        }
    }

    pub fn take(&self, user: &str) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(user.to_owned()).or_default();
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        crate::metrics::metrics().open_streams.inc();
        Some(Slot {
            user: user.to_owned(),
            open: self.open.clone(),
        })
    }
}
