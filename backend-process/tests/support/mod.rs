//! Helpers shared by this crate's integration tests (each test binary uses what it needs).

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// The most a helper waits for something that should happen promptly.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Runs `f` on its own thread and returns what it returns, failing the test (instead of hanging
/// it) if that takes longer than [`LIMIT`]: Python's `_fail_on_deadlock`.
pub fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hang: {what} did not return"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => unreachable!("the thread sends before it ends"),
        },
    }
}

/// A private directory of marker files, removed on drop (which first writes `release`, letting
/// every task blocked on it go).
pub struct Dir(PathBuf);

impl Dir {
    /// A fresh directory whose name holds `name`, this process's id and the time.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "backend-process-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    /// The directory itself.
    pub fn root(&self) -> PathBuf {
        self.0.clone()
    }

    /// The path of `name` in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Lets every task blocked on this directory's `release` file go.
    pub fn release(&self) {
        std::fs::write(self.path("release"), b"").unwrap();
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path("release"), b"");
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
