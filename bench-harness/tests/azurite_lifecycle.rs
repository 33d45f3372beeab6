//! Azurite is the harness's child only while a scenario needs it: after a run (a good one, one
//! whose rows fail, one cut short by an error) no Azurite process of ours is left, not even a
//! zombie. One test in a binary of its own, so that no other test's Azurite is counted.

use bench_harness::azurite::Azurite;
use bench_harness::{RunOptions, run};
use scenarios::{Backend, Scenario};

/// The pids of this process's children whose command line mentions azurite (a zombie has an
/// empty command line, so zombies are found by their name, `node`, too).
fn azurite_children() -> Vec<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((head, tail)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head.split_once(" (").map_or("", |(_, c)| c);
        let ppid = tail
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(me) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).to_lowercase();
        if cmdline.contains("azurite") || (cmdline.is_empty() && comm == "node") {
            found.push(pid);
        }
    }
    found
}

fn scenario(expect_ok: usize) -> Scenario {
    Scenario::parse(
        "lifecycle.yaml",
        &format!(
            "name: lifecycle\nworkload: {{azure-blobs: {{images: 3, width: 16, height: 16}}}}\n\
             backends: [serial, threads, async]\nmatrix: {{max_workers: [2]}}\n\
             repeats: 1\nwarmup: 0\nexpect: {{ok: {expect_ok}}}\n"
        ),
    )
    .unwrap()
}

fn options() -> RunOptions {
    RunOptions {
        backends: vec![Backend::Serial, Backend::Threads, Backend::Async],
        cpython: Some(false),
        ..RunOptions::default()
    }
}

#[test]
fn azurite_is_gone_after_every_kind_of_run() {
    if [
        scenarios::azure::CONTAINER_SAS_URL_ENV,
        scenarios::azure::CONNECTION_STRING_ENV,
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
    {
        eprintln!("an Azure account is set in the environment: the harness starts no Azurite");
        return;
    }
    assert_eq!(azurite_children(), Vec::<u32>::new(), "none before");

    // A good run: Azurite is there while rows are measured, and gone after.
    let mut seen_during = Vec::new();
    let records = run(&[scenario(3)], &options(), |_| {
        seen_during.extend(azurite_children());
        Ok(())
    })
    .unwrap();
    assert!(records.iter().all(|r| r.check_passed()), "{records:?}");
    assert!(
        !seen_during.is_empty(),
        "the harness ran its own Azurite as a child during the run"
    );
    assert_eq!(azurite_children(), Vec::<u32>::new(), "after a good run");
    for pid in &seen_during {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "Azurite {pid} was stopped and reaped"
        );
    }

    // Rows that fail their check: the run goes on to the end, then stops Azurite.
    let records = run(&[scenario(2)], &options(), |_| Ok(())).unwrap();
    assert!(
        records.iter().all(|r| r.check == "expected ok = 2, got 3"),
        "{records:?}"
    );
    assert_eq!(azurite_children(), Vec::<u32>::new(), "after failed rows");

    // A run cut short (the results cannot be written): Azurite is stopped on the way out.
    let e = run(&[scenario(3)], &options(), |_| {
        Err(std::io::Error::other("disk full"))
    })
    .unwrap_err();
    assert!(e.to_string().contains("disk full"), "{e}");
    assert_eq!(azurite_children(), Vec::<u32>::new(), "after an error");

    // Started and stopped by hand.
    let azurite = Azurite::start().unwrap();
    let pid = azurite.pid();
    assert_eq!(azurite_children(), vec![pid]);
    azurite.stop();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(azurite_children(), Vec::<u32>::new());
}
