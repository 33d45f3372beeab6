//! Azurite, the Azure Storage emulator, started and stopped by the harness for the
//! `azure-blobs` scenario, and that scenario's set-up.
//!
//! **Finding it** ([`find_azurite`]): `$AZURITE_BLOB_BIN`, else `node_modules/.bin/azurite-blob`
//! at the workspace root (where `.ci/run` installs it), else
//! `target/azurite/node_modules/.bin/azurite-blob`, else the harness installs it there once with
//! `npm install --no-save --prefix target/azurite azurite@3` (into a scratch folder first, then
//! renamed into place, so concurrent runs never see half an install).
//!
//! **Without Node.js** ([`AzureSetup::prepare`] answers [`SetupError::Unavailable`], and the
//! scenario's rows are skipped, not failed): when the environment names no storage account,
//! `$AZURITE_BLOB_BIN` is unset or empty, and `node` is not on `PATH` (Azurite runs on it, even
//! when installed), or Azurite is not installed yet and `npm` is not on `PATH`. Both are looked
//! up on `PATH` ([`find_program`]) without running anything. Every other problem (a
//! `$AZURITE_BLOB_BIN` that does not exist, `npm install` failing, Azurite not starting, an upload
//! failing) is [`SetupError::Failed`].
//!
//! **Starting it** ([`Azurite::start`]): the blob service only, on `127.0.0.1` at a port that
//! was free a moment before, with in-memory persistence (`--inMemoryPersistence`), no access
//! log (`--silent`), no telemetry, and `--skipApiVersionCheck` (the SDK speaks a newer service
//! version than Azurite knows; the operations used here are old). Its output goes to a log file
//! in a scratch folder, quoted when it fails to start. The harness waits until the port
//! accepts connections (at most 60 s) and tries another port if the chosen one was taken.
//!
//! **Stopping it**: dropping the [`Azurite`] (also on an error or a panic) closes its stdin,
//! asks it to stop (SIGTERM to its process group, then SIGKILL if it lingers), reaps it, and
//! removes the scratch folder: no node process is left behind. When the harness itself is
//! killed, Azurite notices: a small script preloaded into node ends it when its stdin (a pipe
//! from the harness) closes.
//!
//! ```no_run
//! // Starts a real Azurite: needs Node.js (and npm, the first time).
//! use scenarios::azure::{AzureTarget, upload_images};
//! let azurite = bench_harness::azurite::Azurite::start().unwrap();
//! let target = AzureTarget::emulator(&azurite.blob_endpoint());
//! let container = upload_images(&target, 4, 64, 64).unwrap();
//! assert_eq!(container.blobs.len(), 4);
//! drop(azurite); // stopped and reaped
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use scenarios::azure::{
    AzureContainer, AzureTarget, CONNECTION_STRING_ENV, CONTAINER_SAS_URL_ENV, EMULATOR_ACCOUNT,
    TLS, upload_images,
};

/// The environment variable that names the `azurite-blob` program to run.
///
/// ```
/// assert_eq!(bench_harness::azurite::AZURITE_BIN_ENV, "AZURITE_BLOB_BIN");
/// ```
pub const AZURITE_BIN_ENV: &str = "AZURITE_BLOB_BIN";

/// The npm package the harness installs when it finds no Azurite.
///
/// ```
/// assert_eq!(bench_harness::azurite::AZURITE_PACKAGE, "azurite@3");
/// ```
pub const AZURITE_PACKAGE: &str = "azurite@3";

/// How long Azurite may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping Azurite is given before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Ports tried before giving up (another process may take a port between our probe and
/// Azurite's bind).
const START_ATTEMPTS: usize = 3;

/// Preloaded into node (`--require`): Azurite ends when the harness goes away.
const WATCHDOG_JS: &str = "\
// bench-harness: end this Azurite when the harness that started it is gone (stdin closes).
process.stdin.on(\"end\", () => process.exit(0));
process.stdin.on(\"error\", () => process.exit(0));
process.stdin.resume();
";

static SCRATCH_SEQ: AtomicU64 = AtomicU64::new(0);

/// The workspace root (where `.ci/run` installs `node_modules`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Where Azurite is looked for before npm installs it: the workspace's `node_modules` (where
/// `.ci/run` installs it), then `target/azurite` (where the harness does).
fn installed_candidates(root: &Path) -> [PathBuf; 2] {
    [
        root.join("node_modules/.bin/azurite-blob"),
        root.join("target/azurite/node_modules/.bin/azurite-blob"),
    ]
}

/// The first executable file named `program` in the directories of `search_path` (a `PATH`
/// value, `:`-separated), as a program run by name would be found; `None` if there is none.
/// Nothing is run. Empty entries are ignored, and so is a `program` containing a `/`.
///
/// ```
/// use bench_harness::azurite::find_program;
/// assert_eq!(find_program("sh", "/nonexistent:/bin".as_ref()), Some("/bin/sh".into()));
/// assert_eq!(find_program("sh", "".as_ref()), None);
/// assert_eq!(find_program("no-such-program-here", "/bin:/usr/bin".as_ref()), None);
/// ```
pub fn find_program(program: &str, search_path: &OsStr) -> Option<PathBuf> {
    if program.is_empty() || program.contains('/') {
        return None;
    }
    std::env::split_paths(search_path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether `program` is on this process's `PATH` ([`find_program`]; an unset `PATH` has
/// nothing on it).
fn on_path(program: &str) -> bool {
    find_program(program, &std::env::var_os("PATH").unwrap_or_default()).is_some()
}

/// Why the harness cannot start Azurite on this machine, if what it needs is missing: `node`
/// (always: Azurite runs on it), or `npm` when Azurite is not installed yet. `None` when
/// `$AZURITE_BLOB_BIN` names a program (whatever happens to it then is a failure).
fn azurite_unavailable() -> Option<String> {
    if std::env::var_os(AZURITE_BIN_ENV).is_some_and(|v| !v.is_empty()) {
        return None;
    }
    let or_else = format!(
        "or set ${AZURITE_BIN_ENV} to an azurite-blob program, or name a storage account in \
         ${CONTAINER_SAS_URL_ENV} or ${CONNECTION_STRING_ENV}"
    );
    if !on_path("node") {
        return Some(format!(
            "azure-blobs needs Node.js (for Azurite, the Azure Storage emulator), and `node` is \
             not on PATH: install Node.js and npm (e.g. `apt-get install nodejs npm`), {or_else}"
        ));
    }
    let installed = installed_candidates(&workspace_root())
        .iter()
        .any(|c| c.exists());
    if !installed && !on_path("npm") {
        return Some(format!(
            "azure-blobs needs Azurite (the Azure Storage emulator), which is not installed, and \
             `npm` to install it is not on PATH: install npm (e.g. `apt-get install npm`), or \
             run `npm install --no-save {AZURITE_PACKAGE}` in the workspace, {or_else}"
        ));
    }
    None
}

/// The `azurite-blob` program the harness will run: `$AZURITE_BLOB_BIN`, else the workspace's
/// `node_modules/.bin/azurite-blob`, else `target/azurite/node_modules/.bin/azurite-blob`, else
/// that one after installing it with npm. The error says what is missing and how to fix it.
///
/// ```no_run
/// // May run `npm install` the first time.
/// let bin = bench_harness::azurite::find_azurite().unwrap();
/// assert!(bin.ends_with("azurite-blob"));
/// ```
pub fn find_azurite() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os(AZURITE_BIN_ENV).filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.exists() {
            Ok(bin)
        } else {
            Err(format!(
                "${AZURITE_BIN_ENV} is {}, which does not exist",
                bin.display()
            ))
        };
    }
    let root = workspace_root();
    let [workspace, installed] = installed_candidates(&root);
    for candidate in [workspace, installed.clone()] {
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    install(&root.join("target/azurite"))?;
    if installed.exists() {
        Ok(installed)
    } else {
        Err(format!(
            "npm installed {AZURITE_PACKAGE}, but {} is missing",
            installed.display()
        ))
    }
}

/// Installs Azurite under `prefix` with npm: into a scratch folder beside it, then renamed into
/// place (if another run got there first, its install is used).
fn install(prefix: &Path) -> Result<(), String> {
    let help = format!(
        "the azure-blobs scenario needs Azurite, which needs Node.js and npm: install them \
         (e.g. `apt-get install nodejs npm`) and run `npm install --no-save {AZURITE_PACKAGE}` \
         in the workspace, or set ${AZURITE_BIN_ENV} to an azurite-blob program"
    );
    let parent = prefix.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let scratch = parent.join(format!(
        "azurite.installing-{}-{}",
        std::process::id(),
        SCRATCH_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    eprintln!(
        "bench-harness: installing {AZURITE_PACKAGE} with npm into {} (once)",
        prefix.display()
    );
    let out = Command::new("npm")
        .args([
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefix",
        ])
        .arg(&scratch)
        .arg(AZURITE_PACKAGE)
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(format!("`npm` cannot be run ({e}): {help}"));
        }
    };
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&scratch);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!(
            "`npm install {AZURITE_PACKAGE}` failed ({}): {last}; {help}",
            out.status
        ));
    }
    if std::fs::rename(&scratch, prefix).is_err() {
        // Another run installed it meanwhile (or a stale empty folder is in the way).
        let _ = std::fs::remove_dir_all(&scratch);
        if !prefix.join("node_modules/.bin/azurite-blob").exists() {
            return Err(format!(
                "cannot move the npm install into {}: remove that folder and try again",
                prefix.display()
            ));
        }
    }
    Ok(())
}

/// A running Azurite blob service, stopped and reaped when dropped.
#[derive(Debug)]
pub struct Azurite {
    child: Option<Child>,
    port: u16,
    scratch: PathBuf,
}

impl Azurite {
    /// Finds Azurite ([`find_azurite`], installing it if need be) and starts it on loopback.
    ///
    /// ```no_run
    /// let azurite = bench_harness::azurite::Azurite::start().unwrap();
    /// assert!(azurite.blob_endpoint().starts_with("http://127.0.0.1:"));
    /// ```
    pub fn start() -> Result<Azurite, String> {
        Azurite::start_with(&find_azurite()?)
    }

    /// Starts the `azurite-blob` program `bin` on loopback and waits until it accepts
    /// connections. A `bin` that is a Node.js script (as npm installs it) runs under `node`,
    /// which must be on `PATH`, with the watchdog that ends it if the harness dies.
    ///
    /// ```
    /// let e = bench_harness::azurite::Azurite::start_with("/nonexistent/azurite-blob".as_ref()).unwrap_err();
    /// assert!(e.contains("/nonexistent/azurite-blob"), "{e}");
    /// ```
    pub fn start_with(bin: &Path) -> Result<Azurite, String> {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match Azurite::try_start(bin) {
                Ok(azurite) => return Ok(azurite),
                Err((retry, why)) if retry => last = why,
                Err((_, why)) => return Err(why),
            }
        }
        Err(last)
    }

    /// One attempt; `Err((true, _))` when another port may help.
    fn try_start(bin: &Path) -> Result<Azurite, (bool, String)> {
        let fatal = |why: String| (false, why);
        remove_stale_scratch();
        let script = std::fs::canonicalize(bin)
            .map_err(|e| fatal(format!("cannot run {}: {e}", bin.display())))?;
        let port = free_port().map_err(|e| fatal(format!("no free loopback port: {e}")))?;
        let scratch = std::env::temp_dir().join(format!(
            "bench-harness-azurite-{}-{}",
            std::process::id(),
            SCRATCH_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&scratch)
            .map_err(|e| fatal(format!("cannot create {}: {e}", scratch.display())))?;
        let log_path = scratch.join("azurite.log");
        let log = File::create(&log_path)
            .map_err(|e| fatal(format!("cannot create {}: {e}", log_path.display())))?;
        let log_err = log
            .try_clone()
            .map_err(|e| fatal(format!("cannot share {}: {e}", log_path.display())))?;
        let mut command = if script.extension().is_some_and(|e| e == "js") {
            let watchdog = scratch.join("watchdog.js");
            std::fs::write(&watchdog, WATCHDOG_JS)
                .map_err(|e| fatal(format!("cannot write {}: {e}", watchdog.display())))?;
            let mut c = Command::new("node");
            c.arg("--require").arg(&watchdog).arg(&script);
            c
        } else {
            Command::new(&script)
        };
        command
            .args(["--blobHost", "127.0.0.1", "--blobPort"])
            .arg(port.to_string())
            .args([
                "--inMemoryPersistence",
                "--silent",
                "--skipApiVersionCheck",
                "--disableTelemetry",
            ])
            // In memory, but whatever it might write goes to the scratch folder.
            .current_dir(&scratch)
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log_err)
            .process_group(0);
        let child = command.spawn().map_err(|e| {
            let _ = std::fs::remove_dir_all(&scratch);
            let what = if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{e}: Azurite runs on Node.js; install it (e.g. `apt-get install nodejs npm`)"
                )
            } else {
                e.to_string()
            };
            fatal(format!("cannot start {}: {what}", script.display()))
        })?;
        let mut azurite = Azurite {
            child: Some(child),
            port,
            scratch,
        };
        let start = Instant::now();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            let exited = azurite
                .child
                .as_mut()
                .map(|c| c.try_wait())
                .transpose()
                .map_err(|e| fatal(format!("cannot watch Azurite: {e}")))?
                .flatten();
            if let Some(status) = exited {
                let log = azurite.log_tail();
                let in_use = log.contains("EADDRINUSE");
                return Err((
                    in_use,
                    format!(
                        "Azurite ({}) exited at start ({status}): {log}",
                        script.display()
                    ),
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(azurite);
            }
            if start.elapsed() > START_TIMEOUT {
                let log = azurite.log_tail();
                return Err(fatal(format!(
                    "Azurite did not listen on {addr} within {} s: {log}",
                    START_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The blob service's endpoint for the emulator account:
    /// `http://127.0.0.1:PORT/devstoreaccount1`.
    ///
    /// ```no_run
    /// let azurite = bench_harness::azurite::Azurite::start().unwrap();
    /// assert_eq!(azurite.blob_endpoint(), format!("http://127.0.0.1:{}/devstoreaccount1", azurite.port()));
    /// ```
    pub fn blob_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{EMULATOR_ACCOUNT}", self.port)
    }

    /// The loopback port it listens on.
    ///
    /// ```no_run
    /// assert!(bench_harness::azurite::Azurite::start().unwrap().port() > 0);
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the Azurite process (node).
    ///
    /// ```no_run
    /// let azurite = bench_harness::azurite::Azurite::start().unwrap();
    /// assert!(std::path::Path::new(&format!("/proc/{}", azurite.pid())).exists());
    /// ```
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Stops it and waits until the process is gone (what dropping it does).
    ///
    /// ```no_run
    /// let azurite = bench_harness::azurite::Azurite::start().unwrap();
    /// let pid = azurite.pid();
    /// azurite.stop();
    /// assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    /// ```
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// The last lines Azurite wrote (for error messages).
    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(self.scratch.join("azurite.log")) {
            let len = f.metadata().map_or(0, |m| m.len());
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(2000)));
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(4)..].join(" | ");
        if tail.is_empty() {
            "(it wrote nothing)".into()
        } else {
            tail
        }
    }

    fn shutdown(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Closing stdin ends it through the watchdog; signals cover a program without one.
            drop(child.stdin.take());
            if !wait_for(&mut child, STOP_GRACE) {
                signal_group(&child, rustix::process::Signal::TERM);
                if !wait_for(&mut child, STOP_GRACE) {
                    signal_group(&child, rustix::process::Signal::KILL);
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Removes the scratch folders of harnesses that were killed before they could (their process
/// is gone; Azurite itself ended with them, through the watchdog).
fn remove_stale_scratch() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix("bench-harness-azurite-"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Waits up to `limit` for `child` to exit (and reaps it); whether it did.
fn wait_for(child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if start.elapsed() >= limit => return false,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Sends `signal` to the child's process group (it leads one: `process_group(0)`).
fn signal_group(child: &Child, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Why [`AzureSetup::prepare`] made no blob store. Displays as its message.
///
/// ```
/// use bench_harness::azurite::SetupError;
/// let e = SetupError::Unavailable("azure-blobs needs Node.js".into());
/// assert_eq!(e.to_string(), "azure-blobs needs Node.js");
/// assert!(matches!(SetupError::from("upload failed".to_string()), SetupError::Failed(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    /// What the harness's own Azurite needs is missing on this machine (Node.js, or npm before
    /// Azurite is installed), and nothing else was named: the scenario cannot run here, and is
    /// skipped. The message says what is missing and how to get it.
    Unavailable(String),
    /// Anything else: a misconfiguration, an install, a start or an upload that failed. The
    /// scenario's rows fail.
    Failed(String),
}

impl SetupError {
    /// The message, without the kind.
    ///
    /// ```
    /// use bench_harness::azurite::SetupError;
    /// assert_eq!(SetupError::Failed("upload failed".into()).message(), "upload failed");
    /// ```
    pub fn message(&self) -> &str {
        match self {
            SetupError::Unavailable(m) | SetupError::Failed(m) => m,
        }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for SetupError {}

impl From<String> for SetupError {
    fn from(message: String) -> SetupError {
        SetupError::Failed(message)
    }
}

/// The `azure-blobs` scenario's blob store, ready: the container with the images uploaded, and
/// the Azurite that serves it (when the harness started one; it stops when this is dropped).
#[derive(Debug)]
pub struct AzureSetup {
    /// The container and the digest of every image in it.
    pub container: AzureContainer,
    /// Where it is, without secrets, for messages (`container `bench-harness` of http://...`).
    pub place: String,
    /// The harness's own Azurite, if it started one.
    pub azurite: Option<Azurite>,
}

impl AzureSetup {
    /// Makes the store for `images` images of `width` × `height`: in the account the
    /// environment names (`$BENCH_AZURE_CONTAINER_SAS_URL`, else
    /// `$AZURE_STORAGE_CONNECTION_STRING`), else in an Azurite started here; then uploads the
    /// images ([`upload_images`]). Not timed. The error says what failed and what to do.
    ///
    /// It is [`SetupError::Unavailable`] (skip the scenario) when Azurite would be needed and
    /// cannot run here: no account in the environment, `$AZURITE_BLOB_BIN` unset or empty, and
    /// `node` not on `PATH` (or Azurite not installed yet and `npm` not on `PATH`). Anything
    /// else that goes wrong is [`SetupError::Failed`].
    ///
    /// ```no_run
    /// // Starts Azurite (or uses the account in the environment).
    /// let setup = bench_harness::azurite::AzureSetup::prepare(8, 64, 64).unwrap();
    /// assert_eq!(setup.container.blobs.len(), 8);
    /// ```
    pub fn prepare(images: usize, width: u32, height: u32) -> Result<AzureSetup, SetupError> {
        let (target, azurite, source) = match AzureTarget::from_env()? {
            Some(target) => {
                let source = if std::env::var_os(CONTAINER_SAS_URL_ENV).is_some() {
                    CONTAINER_SAS_URL_ENV
                } else {
                    CONNECTION_STRING_ENV
                };
                (target, None, format!("${source}"))
            }
            None => {
                if let Some(why) = azurite_unavailable() {
                    return Err(SetupError::Unavailable(why));
                }
                let azurite = Azurite::start()?;
                let target = AzureTarget::emulator(&azurite.blob_endpoint());
                (
                    target,
                    Some(azurite),
                    "Azurite started by the harness".into(),
                )
            }
        };
        if target.is_https() && !TLS {
            return Err(SetupError::Failed(format!(
                "{target} ({source}) is https, and this build has no TLS: rebuild with \
                 `--features azure-tls` (cargo run --release -p bench-harness --features azure-tls)"
            )));
        }
        let place = format!("{target} ({source})");
        let container = upload_images(&target, images, width, height)?;
        Ok(AzureSetup {
            container,
            place,
            azurite,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_file(path: &Path, mode: u32) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn find_program_finds_an_executable_file_on_the_path() {
        let empty = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        let node = bin.path().join("node");
        write_file(&node, 0o755);
        let path = std::env::join_paths([empty.path(), bin.path()]).unwrap();
        assert_eq!(find_program("node", &path), Some(node));
        assert_eq!(find_program("npm", &path), None);
    }

    #[test]
    fn find_program_skips_a_file_that_is_not_executable_and_a_directory() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        write_file(&first.path().join("node"), 0o644);
        std::fs::create_dir(second.path().join("node")).unwrap();
        let path = std::env::join_paths([first.path(), second.path()]).unwrap();
        assert_eq!(find_program("node", &path), None);
        // An executable one further on is found.
        let third = tempfile::tempdir().unwrap();
        write_file(&third.path().join("node"), 0o700);
        let path = std::env::join_paths([first.path(), second.path(), third.path()]).unwrap();
        assert_eq!(find_program("node", &path), Some(third.path().join("node")));
    }

    #[test]
    fn find_program_finds_nothing_on_an_empty_path() {
        assert_eq!(find_program("node", OsStr::new("")), None);
        assert_eq!(find_program("sh", OsStr::new("")), None);
        assert_eq!(find_program("sh", OsStr::new("::")), None);
    }

    #[test]
    fn find_program_takes_names_not_paths() {
        assert_eq!(find_program("bin/sh", OsStr::new("/")), None);
        assert_eq!(find_program("", OsStr::new("/bin")), None);
    }
}
