//! What the integration tests share: where things are, a scratch directory, one
//! `ringmerge_driver run`, where two dumps first differ, the one reader of what ringmerge logs
//! (its per-subcompaction outcome lines and the LOG's events), and the paper's db_bench
//! configuration. Each test crate uses part of it.
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

/// What one `ringmerge_driver run` left: its dump, its DB's LOG and its stdout.
pub struct DriverRun {
    pub dump: String,
    pub log: String,
    pub stdout: String,
}

/// `ringmerge_driver run` under `RINGMERGE_MODE=mode` through `cmd` (the driver, or a wrapper
/// that execs it): its DB in `dir/db-<tag>`, its dump in `dir/dump-<tag>.txt`.
pub fn run_driver(mut cmd: Command, dir: &Path, tag: &str, mode: &str, args: &[&str]) -> DriverRun {
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
    DriverRun {
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

/// One subcompaction's outcome as ringmerge logs it (cpp/common/ringmerge_report.cc, the
/// text from src/report.rs), from either form:
/// - a LOG line: `[<cf>] [JOB <n>] ringmerge: accelerated subcompaction <k>: tier=2
///   backend=... merge=... runs=.. ... status=<RocksDB's status>` or `... ringmerge: fallback
///   subcompaction <k>: <reason>`;
/// - a `RINGMERGE_OUTCOME_LOG` line: `accelerated <fields>` (no status) or `fallback <reason>`.
///
/// scripts/outcomes.py reads the same lines the same way for the scripts.
#[derive(Clone, PartialEq)]
pub struct Outcome {
    pub accelerated: bool,
    /// LOG lines only.
    pub subcompaction: Option<u32>,
    /// An accelerated outcome's `key=value` fields in order, quotes removed (`status` apart).
    pub fields: Vec<(String, String)>,
    /// An accelerated LOG line's status: `OK`, `Corruption: ...`, `IO error: ...`.
    pub status: Option<String>,
    /// A fallback's reason.
    pub reason: Option<String>,
    /// The line as written.
    pub line: String,
}

/// Shown as the line it came from, so a failing assertion prints what the LOG said.
impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.line.fmt(f)
    }
}

impl Outcome {
    /// The value of a field (`field("merge")`: `Some("native")`).
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// An integer field's value.
    pub fn int(&self, key: &str) -> Option<u64> {
        self.field(key)?.parse().ok()
    }

    /// A number field's value (`read_wait_ms=1.5`).
    pub fn num(&self, key: &str) -> Option<f64> {
        self.field(key)?.parse().ok()
    }

    /// An accelerated subcompaction RocksDB finished with status OK (LOG lines only).
    pub fn ok(&self) -> bool {
        self.accelerated && self.status.as_deref() == Some("OK")
    }

    /// A status that begins with `kind` (`Corruption`, `IO error`, `Shutdown in progress`).
    pub fn status_is(&self, kind: &str) -> bool {
        self.status.as_deref().is_some_and(|s| s.starts_with(kind))
    }
}

fn is_field_key(k: &str) -> bool {
    k.starts_with(|c: char| c.is_ascii_lowercase())
        && k.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The `key=value` fields of an accelerated outcome and its status. A quoted value runs to the
/// quote before a space or the end of the line; words that are not `key=value`
/// (`wrapped_fs="X" (footers verified, read directly)`) are skipped; `status=` is RocksDB's
/// status and runs to the end of the line.
fn parse_fields(text: &str) -> (Vec<(String, String)>, Option<String>) {
    let mut fields = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return (fields, None);
        }
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..word_end];
        let Some((key, value)) = word.split_once('=').filter(|(k, _)| is_field_key(k)) else {
            rest = &rest[word_end..];
            continue;
        };
        let after_eq = &rest[key.len() + 1..];
        if key == "status" {
            return (fields, Some(after_eq.to_string()));
        }
        if let Some(body) = after_eq.strip_prefix('"') {
            let close = body.match_indices('"').map(|(i, _)| i).find(|&i| {
                body[i + 1..].is_empty() || body[i + 1..].starts_with(char::is_whitespace)
            });
            if let Some(i) = close {
                fields.push((key.to_string(), body[..i].to_string()));
                rest = &body[i + 1..];
                continue;
            }
        }
        fields.push((key.to_string(), value.to_string()));
        rest = &rest[word_end..];
    }
}

/// The outcome of a LOG line or a `RINGMERGE_OUTCOME_LOG` line; `None` for any other line.
pub fn parse_outcome(line: &str) -> Option<Outcome> {
    let outcome = |accelerated, subcompaction, rest: &str| {
        let (fields, status, reason) = if accelerated {
            let (fields, status) = parse_fields(rest);
            (fields, status, None)
        } else {
            (Vec::new(), None, Some(rest.to_string()))
        };
        Outcome {
            accelerated,
            subcompaction,
            fields,
            status,
            reason,
            line: line.to_string(),
        }
    };
    if let Some(rest) = line.strip_prefix("accelerated ") {
        return Some(outcome(true, None, rest));
    }
    if let Some(rest) = line.strip_prefix("fallback ") {
        return Some(outcome(false, None, rest));
    }
    for (accelerated, marker) in [
        (true, "ringmerge: accelerated subcompaction "),
        (false, "ringmerge: fallback subcompaction "),
    ] {
        let Some(i) = line.find(marker) else { continue };
        let (sub, rest) = line[i + marker.len()..].split_once(": ")?;
        return Some(outcome(accelerated, Some(sub.parse().ok()?), rest));
    }
    None
}

/// Every subcompaction outcome in a LOG's or a `RINGMERGE_OUTCOME_LOG` file's text, in order.
pub fn parse_outcomes(log: &str) -> Vec<Outcome> {
    log.lines().filter_map(parse_outcome).collect()
}

/// What a test asks of a list of outcomes.
pub trait Outcomes {
    fn accelerated(&self) -> Vec<&Outcome>;
    fn fallbacks(&self) -> Vec<&Outcome>;
    /// The sum of an integer field over the outcomes that have it.
    fn sum(&self, key: &str) -> u64;
}

impl Outcomes for [Outcome] {
    fn accelerated(&self) -> Vec<&Outcome> {
        self.iter().filter(|o| o.accelerated).collect()
    }

    fn fallbacks(&self) -> Vec<&Outcome> {
        self.iter().filter(|o| !o.accelerated).collect()
    }

    fn sum(&self, key: &str) -> u64 {
        self.iter().filter_map(|o| o.int(key)).sum()
    }
}

/// Every line ringmerge wrote to a LOG: its subcompaction outcomes and its warnings
/// (`ringmerge: ...`).
pub fn ringmerge_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("ringmerge:")).collect()
}

/// ringmerge's LOG lines that are not subcompaction outcomes: its warnings (once per process,
/// e.g. `ringmerge: RINGMERGE_MODE=bpf but the BPF merge is unavailable, ...`).
pub fn warnings(log: &str) -> Vec<&str> {
    ringmerge_lines(log)
        .into_iter()
        .filter(|l| parse_outcome(l).is_none())
        .collect()
}

/// The LOG's `EVENT_LOG_v1` events named `name` (`compaction_finished`, ...), as JSON.
pub fn events(log: &str, name: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| l.split_once("EVENT_LOG_v1 "))
        .map(|(_, json)| {
            serde_json::from_str::<serde_json::Value>(json)
                .unwrap_or_else(|err| panic!("unparsable LOG event ({err}): {json}"))
        })
        .filter(|e| e["event"] == name)
        .collect()
}

/// The paper's db_bench configuration, the one definition the benchmark scripts read too
/// (scripts/db_bench_paper.flags: one flag per line, `#` comments), with each of `overrides`
/// replacing the flag of the same name in place (or appended when the file has none).
pub fn db_bench_paper_flags(overrides: &[&str]) -> Vec<String> {
    let path = root().join("scripts/db_bench_paper.flags");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut flags: Vec<String> = text
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    for o in overrides {
        let name = o.split('=').next().unwrap();
        match flags.iter_mut().find(|f| f.split('=').next() == Some(name)) {
            Some(f) => *f = o.to_string(),
            None => flags.push(o.to_string()),
        }
    }
    flags
}
