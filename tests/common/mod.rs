//! What the integration tests that run `ringmerge_driver` share: where things are, a scratch
//! directory, one `ringmerge_driver run`, and where two dumps first differ. Each test crate
//! uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The patched build's driver (`RINGMERGE_DRIVER` overrides).
pub fn driver() -> PathBuf {
    let p = std::env::var_os("RINGMERGE_DRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/rocksdb/bin/ringmerge_driver"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/build-rocksdb.sh (the README's test command does)",
        p.display()
    );
    p
}

/// A fresh scratch directory `target/<area>/<name>` on the project's file system (which supports
/// O_DIRECT; tmpfs does not).
pub fn scratch(area: &str, name: &str) -> PathBuf {
    let d = root().join("target").join(area).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub struct Outcome {
    pub dump: String,
    pub log: String,
    pub stdout: String,
}

/// `ringmerge_driver run` under `RINGMERGE_MODE=mode` through `cmd` (the driver, or a wrapper
/// that execs it): its DB in `dir/db-<tag>`, its dump in `dir/dump-<tag>.txt`.
pub fn run_driver(mut cmd: Command, dir: &Path, tag: &str, mode: &str, args: &[&str]) -> Outcome {
    let db = dir.join(format!("db-{tag}"));
    let out = dir.join(format!("dump-{tag}.txt"));
    // Only what a test sets reaches the driver: a RINGMERGE_* variable in the caller's
    // environment (RINGMERGE_IO=pread, say) would otherwise change what the assertions see.
    for (k, _) in std::env::vars() {
        if k.starts_with("RINGMERGE_") && cmd.get_envs().all(|(set, _)| set != k.as_str()) {
            cmd.env_remove(&k);
        }
    }
    let res = cmd
        .env("RINGMERGE_MODE", mode)
        .arg("run")
        .arg("--db")
        .arg(&db)
        .arg("--out")
        .arg(&out)
        .args(args)
        .output()
        .expect("spawn ringmerge_driver");
    assert!(
        res.status.success(),
        "{tag} driver ({:?}, {mode}) failed: {}\n{}",
        cmd.get_program(),
        String::from_utf8_lossy(&res.stderr),
        String::from_utf8_lossy(&res.stdout)
    );
    Outcome {
        dump: std::fs::read_to_string(&out).unwrap(),
        // An in-memory file system (--fs mem) keeps the LOG in memory too.
        log: std::fs::read_to_string(db.join("LOG")).unwrap_or_default(),
        stdout: String::from_utf8_lossy(&res.stdout).into_owned(),
    }
}

/// Where two dumps first differ: the 1-based line and five lines of each around it; `None` when
/// they are equal.
pub fn dump_difference(a: &str, b: &str) -> Option<(usize, String, String)> {
    if a == b {
        return None;
    }
    let line = a
        .lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()));
    let show = |s: &str| {
        s.lines()
            .skip(line.saturating_sub(2))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    };
    Some((line + 1, show(a), show(b)))
}
