//! Child processes of `coffer-dev up`: started with their output in log files, stopped with
//! SIGTERM, then SIGKILL after a grace period. `Drop` stops whatever is left, so an early error
//! in the launcher leaves no orphan.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The processes one launcher started.
#[derive(Debug, Default)]
pub struct Supervisor {
    children: Vec<(String, Child)>,
    /// How each child was started (program, arguments, log), to start it again.
    launches: Vec<(String, PathBuf, Vec<OsString>, PathBuf)>,
}

impl Supervisor {
    /// Starts `cmd` as `name`, with stdout and stderr appended to `log`.
    pub fn spawn(&mut self, name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<u32> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let launch = (
            name.to_owned(),
            PathBuf::from(cmd.get_program()),
            cmd.get_args().map(OsString::from).collect(),
            log.to_owned(),
        );
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id();
        self.children.push((name.to_owned(), child));
        self.launches.retain(|(n, ..)| n != name);
        self.launches.push(launch);
        Ok(pid)
    }

    /// Sends `signal` to `name` (SIGKILL: as a crash would end it; SIGKILL and SIGTERM wait
    /// until it has gone).
    pub fn signal(&mut self, name: &str, signal: Signal) -> anyhow::Result<()> {
        let (_, child) = self
            .children
            .iter_mut()
            .find(|(n, _)| n == name)
            .with_context(|| format!("no child named {name}"))?;
        kill(Pid::from_raw(child.id() as i32), signal)?;
        if matches!(signal, Signal::SIGKILL | Signal::SIGTERM) {
            child.wait()?;
            self.children.retain(|(n, _)| n != name);
        }
        Ok(())
    }

    /// Starts `name` again as it was first started (after [`Supervisor::signal`] ended it).
    pub fn respawn(&mut self, name: &str) -> anyhow::Result<u32> {
        let (_, program, args, log) = self
            .launches
            .iter()
            .find(|(n, ..)| n == name)
            .cloned()
            .with_context(|| format!("{name} was never started"))?;
        anyhow::ensure!(
            !self.children.iter().any(|(n, _)| n == name),
            "{name} is still running"
        );
        let mut cmd = Command::new(program);
        cmd.args(args);
        self.spawn(name, cmd, &log)
    }

    /// Returns the name of a child that has already exited, if any.
    pub fn exited(&mut self) -> Option<String> {
        self.children
            .iter_mut()
            .find_map(|(n, c)| matches!(c.try_wait(), Ok(Some(_))).then(|| n.clone()))
    }

    /// Sends SIGTERM to every child, waits up to `grace` for all of them, then kills the rest.
    pub fn stop_all(&mut self, grace: Duration) {
        for (_, child) in &self.children {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        for (name, child) in &mut self.children {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        eprintln!("{name} did not stop within {grace:?}; killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        self.children.clear();
        self.launches.clear();
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        kill(Pid::from_raw(pid as i32), None).is_ok()
    }

    #[test]
    fn stop_all_ends_polite_and_stubborn_children() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("children.log");
        let mut sup = Supervisor::default();
        let polite = sup
            .spawn(
                "polite",
                {
                    let mut c = Command::new("sleep");
                    c.arg("600");
                    c
                },
                &log,
            )
            .unwrap();
        // Ignores SIGTERM: only the SIGKILL after the grace period ends it.
        let stubborn = sup
            .spawn(
                "stubborn",
                {
                    let mut c = Command::new("sh");
                    c.args(["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"]);
                    c
                },
                &log,
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(alive(polite) && alive(stubborn));
        assert_eq!(sup.exited(), None);
        let start = Instant::now();
        sup.stop_all(Duration::from_millis(500));
        assert!(!alive(polite) && !alive(stubborn));
        assert!(
            start.elapsed() >= Duration::from_millis(450),
            "the stubborn child got no grace"
        );
        assert!(std::fs::read_to_string(&log).unwrap().contains("ready"));
    }

    #[test]
    fn a_killed_child_starts_again_as_it_was_started() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c.log");
        let mut sup = Supervisor::default();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 600"]);
        // Waits (bounded) until the log shows `n` starts: a loaded machine may not have run
        // the shell's echo yet when the test moves on.
        let starts_reach = |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let seen = std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .matches("started")
                    .count();
                if seen >= n || Instant::now() >= deadline {
                    return seen;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        let first = sup.spawn("svc", cmd, &log).unwrap();
        assert!(sup.respawn("svc").is_err(), "respawned a running child");
        assert_eq!(starts_reach(1), 1);
        sup.signal("svc", Signal::SIGKILL).unwrap();
        assert!(!alive(first));
        let second = sup.respawn("svc").unwrap();
        assert_ne!(first, second);
        assert_eq!(starts_reach(2), 2, "the second start ran the same command");
        assert!(alive(second));
        assert!(sup.respawn("other").is_err());
        sup.stop_all(Duration::from_secs(1));
        assert!(!alive(second));
    }

    #[test]
    fn an_exited_child_is_reported_and_drop_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c.log");
        let pid;
        {
            let mut sup = Supervisor::default();
            sup.spawn("quick", Command::new("true"), &log).unwrap();
            pid = sup
                .spawn(
                    "long",
                    {
                        let mut c = Command::new("sleep");
                        c.arg("600");
                        c
                    },
                    &log,
                )
                .unwrap();
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(sup.exited().as_deref(), Some("quick"));
        }
        assert!(!alive(pid), "drop left a child running");
    }
}
