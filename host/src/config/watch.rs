//! When to reload the configuration: on SIGHUP, and when a resource file or another watched
//! file (a tenant's component) is added, removed or changed, checked every [`INTERVAL`].

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tokio::time::Interval;

/// How often the watched files are checked for changes.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The reasons to reload, one at a time, until shutdown.
pub struct ReloadTriggers<F> {
    resources_paths: Vec<PathBuf>,
    more_files: F,
    hangup: Signal,
    ticker: Interval,
    seen: Fingerprint,
    stopped: watch::Receiver<bool>,
}

/// Each watched file with its modification time and size (`None`: it cannot be read).
type Fingerprint = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

impl<F: Fn() -> Vec<PathBuf>> ReloadTriggers<F> {
    /// Watches the resource files under `resources_paths` and the files `more_files` names
    /// (asked again at each check), until `stopped` turns true.
    pub fn new(
        resources_paths: Vec<PathBuf>,
        more_files: F,
        stopped: watch::Receiver<bool>,
    ) -> Result<Self> {
        let hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        let mut triggers = ReloadTriggers {
            resources_paths,
            more_files,
            hangup,
            ticker: tokio::time::interval(INTERVAL),
            seen: Fingerprint::new(),
            stopped,
        };
        triggers.seen = triggers.fingerprint();
        Ok(triggers)
    }

    /// Waits for the next reason to reload (`SIGHUP`, or `a resource file changed`); `None`
    /// once `stopped` turns true.
    pub async fn next(&mut self) -> Option<&'static str> {
        loop {
            let hangup = tokio::select! {
                _ = self.hangup.recv() => true,
                _ = self.ticker.tick() => false,
                _ = self.stopped.wait_for(|stop| *stop) => return None,
            };
            let now = self.fingerprint();
            let changed = now != self.seen;
            self.seen = now;
            if hangup {
                return Some("SIGHUP");
            }
            if changed {
                return Some("a resource file changed");
            }
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        let mut files: Vec<PathBuf> = self
            .resources_paths
            .iter()
            .flat_map(|dir| super::resource_files(dir).unwrap_or_default())
            .collect();
        files.extend((self.more_files)());
        fingerprint(files)
    }
}

/// `files` with their modification times and sizes.
fn fingerprint(files: Vec<PathBuf>) -> Fingerprint {
    files
        .into_iter()
        .map(|file| {
            let stamp = std::fs::metadata(&file)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (file, stamp)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_changes_with_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("locks.yaml");
        let now = || fingerprint(vec![file.clone()]);
        let absent = now();
        assert_eq!(absent, [(file.clone(), None)]);
        std::fs::write(&file, "a").unwrap();
        let written = now();
        assert_ne!(written, absent);
        assert_eq!(now(), written, "unchanged");
        std::fs::write(&file, "ab").unwrap();
        assert_ne!(now(), written, "the size changed");
    }

    #[tokio::test]
    async fn a_changed_resource_file_triggers_a_reload_and_stopping_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let (stop, stopped) = watch::channel(false);
        let mut triggers =
            ReloadTriggers::new(vec![dir.path().to_path_buf()], Vec::new, stopped).unwrap();
        std::fs::write(dir.path().join("locks.yaml"), "a").unwrap();
        assert_eq!(triggers.next().await, Some("a resource file changed"));
        stop.send_replace(true);
        assert_eq!(triggers.next().await, None);
    }
}
