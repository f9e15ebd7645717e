//! Change detection for mounted files (certificates, key rings): Kubernetes updates a mounted
//! secret by swapping a symlink, so the size or modification time seen through the path changes.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

/// A set of files and the stamps last accepted for them.
#[derive(Debug)]
pub(crate) struct Watched {
    paths: Vec<PathBuf>,
    accepted: Vec<Stamp>,
}

impl Watched {
    /// Starts watching `paths`, taking their current state as accepted.
    pub fn new(paths: Vec<PathBuf>) -> Self {
        let accepted = paths.iter().map(|p| stamp(p)).collect();
        Watched { paths, accepted }
    }

    /// Returns the current stamps if any file changed since the last accepted state.
    pub fn changed(&self) -> Option<Vec<Stamp>> {
        let now: Vec<Stamp> = self.paths.iter().map(|p| stamp(p)).collect();
        (now != self.accepted).then_some(now)
    }

    /// Accepts `stamps` (from [`Watched::changed`]) once the new files were loaded.
    pub fn accept(&mut self, stamps: Vec<Stamp>) {
        self.accepted = stamps;
    }
}

/// Calls `reload` every `every` while `alive` returns true. `reload` decides what a change means.
pub(crate) fn spawn_poller(
    every: std::time::Duration,
    mut tick_fn: impl FnMut() -> bool + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !tick_fn() {
                return;
            }
        }
    })
}
