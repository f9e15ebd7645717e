//! The event streams a user holds open, capped per user; a slot is freed when its stream ends.

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
