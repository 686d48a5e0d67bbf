//! Differential tests: the same deterministic database, compacted by stock RocksDB
//! (`RINGMERGE_MODE=off`) and by ringmerge (`RINGMERGE_MODE=native`), must write the same
//! internal keys (user key, sequence, type, value), the same file cuts and the same record counts.
//!
//! They run the real patched RocksDB 10.1.3 through `ringmerge_driver` (tests/driver/), which
//! `scripts/build-rocksdb.sh` builds into target/rocksdb/bin/. The README's test command builds it
//! first; a missing driver fails the tests with that instruction rather than skipping them.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn driver() -> PathBuf {
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

/// A scratch directory on the project's file system (which supports O_DIRECT; tmpfs does not).
fn scratch(name: &str) -> PathBuf {
    let d = root().join("target/difftest").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Outcome {
    dump: String,
    log: String,
}

fn run_mode(dir: &Path, mode: &str, args: &[&str]) -> Outcome {
    run_mode_with(dir, mode, args, Command::new(driver()))
}

fn run_mode_with(dir: &Path, mode: &str, args: &[&str], mut cmd: Command) -> Outcome {
    let db = dir.join(format!("db-{mode}"));
    let out = dir.join(format!("dump-{mode}.txt"));
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
        "driver ({mode}) failed: {}\n{}",
        String::from_utf8_lossy(&res.stderr),
        String::from_utf8_lossy(&res.stdout)
    );
    Outcome {
        dump: std::fs::read_to_string(&out).unwrap(),
        log: std::fs::read_to_string(db.join("LOG")).unwrap(),
    }
}

fn assert_same_dump(stock: &str, accel: &str, dir: &Path) {
    if stock == accel {
        return;
    }
    let line = stock
        .lines()
        .zip(accel.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| stock.lines().count().min(accel.lines().count()));
    let show = |s: &str| {
        s.lines()
            .skip(line.saturating_sub(2))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    };
    panic!(
        "compaction output differs from stock at line {} (dumps in {}):\n--- stock\n{}\n--- ringmerge\n{}",
        line + 1,
        dir.display(),
        show(stock),
        show(accel)
    );
}

fn ringmerge_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("ringmerge:")).collect()
}

/// Runs a scenario both ways, checks the outputs are identical, and returns the ringmerge LOG.
fn differential(name: &str, args: &[&str]) -> String {
    let dir = scratch(name);
    let stock = run_mode(&dir, "off", args);
    let accel = run_mode(&dir, "native", args);
    assert!(
        ringmerge_lines(&stock.log).is_empty(),
        "RINGMERGE_MODE=off must behave as stock and log nothing: {:?}",
        ringmerge_lines(&stock.log)
    );
    assert!(
        stock.dump.contains("compaction status=OK"),
        "no compaction ran:\n{}",
        stock.dump
    );
    assert_same_dump(&stock.dump, &accel.dump, &dir);
    accel.log
}

/// Every subcompaction was accelerated: at least one accelerated line, no fallback.
fn assert_accelerated(log: &str) {
    let lines = ringmerge_lines(log);
    assert!(
        lines.iter().any(|l| l.contains("ringmerge: accelerated")),
        "no accelerated compaction in LOG: {lines:?}"
    );
    let fallbacks: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("ringmerge: fallback"))
        .collect();
    assert!(fallbacks.is_empty(), "unexpected fallbacks: {fallbacks:?}");
    for l in &lines {
        assert!(
            l.contains("status=OK"),
            "accelerated compaction failed: {l}"
        );
        // ringmerge is the tier 2: the merged stream feeds RocksDB's CompactionIterator.
        assert!(l.contains(" tier=2 "), "the LOG line must name tier 2: {l}");
    }
}

fn assert_fell_back(log: &str, reason: &str) {
    let lines = ringmerge_lines(log);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ringmerge: fallback") && l.contains(reason)),
        "expected a fallback mentioning {reason:?}, LOG has: {lines:?}"
    );
}

#[test]
fn l0_over_l1_l2_with_overwrites_and_deletes() {
    let log = differential(
        "l0_l1_l2",
        &[
            "--l0-files",
            "4",
            "--base-levels",
            "2",
            "--delete-pct",
            "15",
        ],
    );
    assert_accelerated(&log);
}

#[test]
fn only_l0_into_bottommost_l1() {
    let log = differential(
        "only_l0",
        &[
            "--l0-files",
            "5",
            "--base-levels",
            "0",
            "--delete-pct",
            "20",
        ],
    );
    assert_accelerated(&log);
}

#[test]
fn single_input() {
    // One L0 file moves trivially to L1; forcing the bottommost level then compacts that one
    // file alone: a one-run merge.
    let log = differential(
        "single_input",
        &[
            "--l0-files",
            "1",
            "--base-levels",
            "0",
            "--force-bottommost",
        ],
    );
    assert_accelerated(&log);
}

#[test]
fn twenty_inputs_use_the_heap() {
    let log = differential(
        "twenty_inputs",
        &[
            "--l0-files",
            "20",
            "--base-levels",
            "1",
            "--keys-per-file",
            "800",
        ],
    );
    assert_accelerated(&log);
    assert!(log.contains("runs=21"), "expected a 21-run merge");
}

#[test]
fn key_sizes_8_to_64_values_0_to_4k() {
    let log = differential(
        "sizes",
        &[
            "--key-min",
            "8",
            "--key-max",
            "64",
            "--value-min",
            "0",
            "--value-max",
            "4096",
            "--keys-per-file",
            "600",
            "--l0-files",
            "6",
        ],
    );
    assert_accelerated(&log);
}

#[test]
fn subcompactions() {
    let log = differential(
        "subcompactions",
        &[
            "--subcompactions",
            "4",
            "--l0-files",
            "6",
            "--keys-per-file",
            "4000",
            "--base-levels",
            "2",
        ],
    );
    assert_accelerated(&log);
    assert!(
        log.contains("ringmerge: accelerated subcompaction 1"),
        "expected more than one subcompaction to run accelerated"
    );
}

#[test]
fn direct_reads() {
    let log = differential(
        "direct",
        &["--direct", "--l0-files", "4", "--base-levels", "2"],
    );
    assert_accelerated(&log);
}

#[test]
fn snapshots_are_decided_by_rocksdb() {
    // The merged stream carries every version; CompactionIterator keeps what snapshots need.
    let log = differential(
        "snapshots",
        &["--snapshots", "1", "--l0-files", "4", "--delete-pct", "20"],
    );
    assert_accelerated(&log);
}

#[test]
fn merge_operands_are_decided_by_rocksdb() {
    let log = differential("merge", &["--merge-pct", "30", "--l0-files", "4"]);
    assert_accelerated(&log);
}

/// Accelerated with range tombstones interleaved (not a fallback).
fn assert_range_dels_served(log: &str) {
    assert_accelerated(log);
    assert!(
        log_sum(log, "range_del_files") > 0,
        "no input's range tombstones went through ringmerge: {:?}",
        ringmerge_lines(log)
    );
}

#[test]
fn range_deletion_in_one_l0_file() {
    let log = differential("range_del", &["--range-del", "--l0-files", "4"]);
    assert_range_dels_served(&log);
}

#[test]
fn range_deletions_across_inputs_and_levels() {
    // Tombstones in every L0 file and in L1 (kept there: L1 is not bottommost when written),
    // small output files so tombstone start keys (sentinels) take part in file cutting.
    let log = differential(
        "range_dels_levels",
        &[
            "--range-dels",
            "6",
            "--l0-files",
            "4",
            "--base-levels",
            "2",
            "--target-file-size",
            "65536",
        ],
    );
    assert_range_dels_served(&log);
}

#[test]
fn range_deletions_with_snapshots_and_subcompactions() {
    // Snapshots keep tombstones in the output; subcompaction bounds clip the tombstone
    // iterators (Seek) and the aggregator's output ranges.
    let log = differential(
        "range_dels_snapshots_sub",
        &[
            "--range-dels",
            "8",
            "--snapshots",
            "2",
            "--subcompactions",
            "4",
            "--l0-files",
            "6",
            "--keys-per-file",
            "3000",
            "--base-levels",
            "2",
            "--target-file-size",
            "65536",
            "--delete-pct",
            "15",
        ],
    );
    assert_range_dels_served(&log);
    assert!(
        log.contains("ringmerge: accelerated subcompaction 1"),
        "expected more than one subcompaction"
    );
}

#[test]
fn range_deletions_with_merge_operands_and_compression() {
    let log = differential(
        "range_dels_merge_zstd",
        &[
            "--range-dels",
            "4",
            "--merge-pct",
            "20",
            "--compression",
            "zstd",
            "--l0-files",
            "5",
            "--snapshots",
            "3",
        ],
    );
    assert_range_dels_served(&log);
}

/// Accelerated, and ringmerge itself decoded compressed blocks (they were not all stored raw).
fn assert_decompressed(log: &str) {
    assert_accelerated(log);
    assert!(
        log_sum(log, "compressed_blocks") > 0,
        "no compressed block was decoded: {:?}",
        ringmerge_lines(log)
    );
}

/// The sum of a `name=<n>` field over the LOG's ringmerge lines.
fn log_sum(log: &str, field: &str) -> u64 {
    let key = format!(" {field}=");
    ringmerge_lines(log)
        .iter()
        .filter_map(|l| l.split(key.as_str()).nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Whether some table of the DB the native run left holds `needle` (e.g. a meta block name).
fn some_table_contains(dir_name: &str, needle: &[u8]) -> bool {
    let db = root()
        .join("target/difftest")
        .join(dir_name)
        .join("db-native");
    std::fs::read_dir(db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .any(|p| {
            std::fs::read(p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
        })
}

/// Three L0 files over L1 and L2, all written with the given codec flags.
fn compressed_scenario(name: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "--l0-files",
        "3",
        "--base-levels",
        "2",
        "--delete-pct",
        "10",
    ];
    args.extend_from_slice(extra);
    differential(name, &args)
}

#[test]
fn snappy_inputs() {
    let log = compressed_scenario("snappy", &["--compression", "snappy"]);
    assert_decompressed(&log);
}

#[test]
fn lz4_inputs() {
    let log = compressed_scenario("lz4", &["--compression", "lz4"]);
    assert_decompressed(&log);
}

#[test]
fn lz4hc_inputs() {
    let log = compressed_scenario("lz4hc", &["--compression", "lz4hc"]);
    assert_decompressed(&log);
}

#[test]
fn zstd_inputs() {
    let log = compressed_scenario("zstd", &["--compression", "zstd"]);
    assert_decompressed(&log);
}

#[test]
fn zlib_inputs() {
    let log = compressed_scenario("zlib", &["--compression", "zlib"]);
    assert_decompressed(&log);
}

#[test]
fn zstd_with_dictionary() {
    let log = compressed_scenario(
        "zstd_dict",
        &["--compression", "zstd", "--max-dict-bytes", "16384"],
    );
    assert_decompressed(&log);
    assert!(log_sum(&log, "dict_files") > 0, "no input had a dictionary");
}

#[test]
fn lz4_and_zlib_with_dictionary() {
    for codec in ["lz4", "zlib"] {
        let log = compressed_scenario(
            &format!("{codec}_dict"),
            &["--compression", codec, "--max-dict-bytes", "8192"],
        );
        assert_decompressed(&log);
        assert!(
            log_sum(&log, "dict_files") > 0,
            "{codec}: no input had a dictionary"
        );
    }
}

#[test]
fn myrocks_mix_lz4_upper_zstd_bottommost() {
    // Upper levels LZ4, the bottommost ZSTD with a dictionary: the last compaction merges LZ4
    // and ZSTD inputs.
    let dir_name = "myrocks_mix";
    let log = compressed_scenario(
        dir_name,
        &[
            "--compression",
            "lz4",
            "--bottommost-compression",
            "zstd",
            "--max-dict-bytes",
            "16384",
            "--subcompactions",
            "2",
        ],
    );
    assert_decompressed(&log);
    assert!(log_sum(&log, "dict_files") > 0, "no input had a dictionary");
    // Both codecs were written (table_file_creation events) and so read back as inputs.
    for codec in ["LZ4", "ZSTD"] {
        assert!(
            log.contains(&format!("\"compression\": \"{codec}\"")),
            "no {codec} table was written"
        );
    }
}

#[test]
fn undecodable_codec_falls_back() {
    // Every codec this RocksDB build can write is decoded (it is built without BZip2 and
    // Xpress), so the TEST HOOK RINGMERGE_FAULT_CODEC marks LZ4 undecodable: the fallback
    // decision, its LOG reason and the stock path then run end to end.
    let args = ["--compression", "lz4", "--l0-files", "3"];
    let dir = scratch("undecodable_codec");
    let stock = run_mode(&dir, "off", &args);
    let mut cmd = Command::new(driver());
    cmd.env("RINGMERGE_FAULT_CODEC", "LZ4");
    let accel = run_mode_with(&dir, "native", &args, cmd);
    assert_same_dump(&stock.dump, &accel.dump, &dir);
    assert_fell_back(
        &accel.log,
        "is compressed with LZ4, which ringmerge does not decode",
    );
}

#[test]
fn partitioned_index() {
    let log = differential(
        "partitioned_index",
        &[
            "--index-type",
            "partitioned",
            "--l0-files",
            "4",
            "--base-levels",
            "2",
        ],
    );
    assert_accelerated(&log);
    let dump =
        std::fs::read_to_string(root().join("target/difftest/partitioned_index/dump-native.txt"))
            .unwrap();
    assert!(
        dump.lines().any(|l| l
            .split("index_partitions=")
            .nth(1)
            .and_then(|n| n.split_whitespace().next()?.parse::<u64>().ok())
            .is_some_and(|n| n >= 2)),
        "the tables' indexes are not partitioned"
    );
}

#[test]
fn partitioned_index_compressed_with_subcompactions() {
    // Subcompaction bounds clip through the two-level index (Seek on the partitions).
    let log = differential(
        "partitioned_index_sub",
        &[
            "--index-type",
            "partitioned",
            "--compression",
            "zstd",
            "--subcompactions",
            "4",
            "--l0-files",
            "6",
            "--keys-per-file",
            "4000",
        ],
    );
    assert_decompressed(&log);
    assert!(
        log.contains("ringmerge: accelerated subcompaction 1"),
        "expected more than one subcompaction"
    );
}

#[test]
fn hash_index() {
    let log = differential(
        "hash_index",
        &[
            "--index-type",
            "hash",
            "--l0-files",
            "4",
            "--base-levels",
            "2",
        ],
    );
    assert_accelerated(&log);
    assert!(
        some_table_contains("hash_index", b"rocksdb.hashindex.prefixes"),
        "the tables have no hash index metadata"
    );
}

#[test]
fn binary_search_with_first_key_index() {
    let log = differential(
        "first_key_index",
        &[
            "--index-type",
            "first-key",
            "--l0-files",
            "4",
            "--base-levels",
            "2",
            "--subcompactions",
            "3",
        ],
    );
    assert_accelerated(&log);
}

fn driver_cmd(mode: &str, args: &[&str]) -> std::process::Output {
    Command::new(driver())
        .env("RINGMERGE_MODE", mode)
        .args(args)
        .output()
        .expect("spawn ringmerge_driver")
}

/// The newest L0 table of a freshly built DB (the highest file number).
fn newest_sst(db: &Path) -> PathBuf {
    let mut ssts: Vec<_> = std::fs::read_dir(db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    ssts.sort();
    ssts.pop().expect("an sst file")
}

/// Builds (with stock RocksDB) the DB the fault tests damage: L0 files over L1, not compacted,
/// and the file of every key's expected value for `verify`.
fn build_fault_db(db: &str, expect: &str) {
    build_fault_db_with(db, expect, &[]);
}

fn build_fault_db_with(db: &str, expect: &str, extra: &[&str]) {
    let mut args = vec![
        "build",
        "--db",
        db,
        "--expect",
        expect,
        "--l0-files",
        "4",
        "--base-levels",
        "1",
        "--keys-per-file",
        "3000",
    ];
    args.extend_from_slice(extra);
    let out = driver_cmd("off", &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn flipped_byte_fails_with_corruption_like_stock() {
    flipped_byte_case("corruption", &[]);
}

#[test]
fn flipped_byte_in_compressed_block_fails_with_corruption_like_stock() {
    // The checksum covers the compressed bytes: ringmerge finds the damage before decoding.
    flipped_byte_case("corruption_zstd", &["--compression", "zstd"]);
}

fn flipped_byte_case(name: &str, extra: &[&str]) {
    let dir = scratch(name);
    let mut statuses = Vec::new();
    for mode in ["off", "native"] {
        let db = dir.join(format!("db-{mode}"));
        let expect = dir.join(format!("expect-{mode}.txt"));
        let (db_s, expect_s) = (db.to_str().unwrap(), expect.to_str().unwrap());
        build_fault_db_with(db_s, expect_s, extra);

        // Flip one byte in the middle of a data block of the newest L0 file: the merge meets
        // it mid-stream, after output files were already opened.
        let sst = newest_sst(&db);
        let mut bytes = std::fs::read(&sst).unwrap();
        let at = bytes.len() / 3;
        bytes[at] ^= 0x40;
        std::fs::write(&sst, &bytes).unwrap();

        let out = driver_cmd(mode, &["compact", "--db", db_s]);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            !out.status.success(),
            "compaction with a flipped byte succeeded ({mode}):\n{stdout}"
        );
        let status = stdout
            .lines()
            .find(|l| l.starts_with("compact status:"))
            .unwrap_or_default()
            .to_string();
        assert!(
            status.contains("Corruption"),
            "({mode}) expected Corruption, got: {stdout}"
        );
        if mode == "native" {
            let log = std::fs::read_to_string(db.join("LOG")).unwrap();
            assert!(
                log.contains("ringmerge: accelerated") && log.contains("status=Corruption"),
                "the corruption must be found by ringmerge itself, mid-stream: {:?}",
                ringmerge_lines(&log)
            );
        }
        statuses.push(status);

        // The DB reopens and every key outside the damaged block reads back.
        let out = driver_cmd(mode, &["verify", "--db", db_s, "--expect", expect_s]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "verify failed ({mode}): {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("mismatch=0"), "{stdout}");
    }
    let kind = |s: &str| s.split(':').nth(1).map(str::trim).unwrap_or("").to_string();
    assert_eq!(
        kind(&statuses[0]),
        kind(&statuses[1]),
        "stock and ringmerge statuses differ: {statuses:?}"
    );
}

/// Runs `cmd` under a seccomp filter that makes io_uring_setup fail with EPERM, as Docker's
/// default profile does.
fn block_io_uring(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec; it only makes raw syscalls
    // (prctl) on data that lives on its own stack, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
            const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
            const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
            let filter = [
                // Kill nothing: a foreign architecture is simply allowed through.
                libc::sock_filter {
                    code: 0x20,
                    jt: 0,
                    jf: 0,
                    k: 4,
                }, // ld arch
                libc::sock_filter {
                    code: 0x15,
                    jt: 0,
                    jf: 3,
                    k: AUDIT_ARCH_X86_64,
                },
                libc::sock_filter {
                    code: 0x20,
                    jt: 0,
                    jf: 0,
                    k: 0,
                }, // ld nr
                libc::sock_filter {
                    code: 0x15,
                    jt: 0,
                    jf: 1,
                    k: libc::SYS_io_uring_setup as u32,
                },
                libc::sock_filter {
                    code: 0x06,
                    jt: 0,
                    jf: 0,
                    k: SECCOMP_RET_ERRNO | libc::EPERM as u32,
                },
                libc::sock_filter {
                    code: 0x06,
                    jt: 0,
                    jf: 0,
                    k: SECCOMP_RET_ALLOW,
                },
            ];
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut _,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const _,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn io_uring_blocked_by_seccomp_falls_back_to_pread() {
    let args = ["--l0-files", "4", "--base-levels", "1"];
    let dir = scratch("seccomp");
    let stock = run_mode(&dir, "off", &args);
    let mut cmd = Command::new(driver());
    block_io_uring(&mut cmd);
    let accel = run_mode_with(&dir, "native", &args, cmd);
    assert_same_dump(&stock.dump, &accel.dump, &dir);
    assert_accelerated(&accel.log);
    let lines = ringmerge_lines(&accel.log);
    assert!(
        lines.iter().any(|l| l.contains("backend=pread")
            && l.contains("io_uring_unavailable=\"io_uring_setup")
            && l.contains("Operation not permitted")),
        "expected the pread backend with the io_uring_setup error in the LOG: {lines:?}"
    );
}

#[test]
fn forced_pread_backend() {
    let args = ["--l0-files", "4", "--base-levels", "2", "--direct"];
    let dir = scratch("pread");
    let stock = run_mode(&dir, "off", &args);
    let mut cmd = Command::new(driver());
    cmd.env("RINGMERGE_IO", "pread");
    let accel = run_mode_with(&dir, "native", &args, cmd);
    assert_same_dump(&stock.dump, &accel.dump, &dir);
    assert_accelerated(&accel.log);
    assert!(
        accel.log.contains("backend=pread"),
        "{:?}",
        ringmerge_lines(&accel.log)
    );
}

#[test]
fn read_error_mid_compaction_fails_with_ioerror_and_loses_nothing() {
    let dir = scratch("eio");
    let db = dir.join("db");
    let expect = dir.join("expect.txt");
    let (db_s, expect_s) = (db.to_str().unwrap(), expect.to_str().unwrap());
    build_fault_db(db_s, expect_s);

    // TEST HOOK (a real disk error cannot be produced on demand here): reads of the newest
    // L0 file from a third of its length on fail with EIO. A 1 MiB budget keeps chunks small,
    // so the first chunks succeed, the merge opens, and output is being written when it hits.
    let sst = newest_sst(&db);
    let len = std::fs::metadata(&sst).unwrap().len();
    let name = sst.file_name().unwrap().to_str().unwrap().to_string();
    let out = Command::new(driver())
        .env("RINGMERGE_MODE", "native")
        .env("RINGMERGE_MEMORY_BUDGET", "1048576")
        .env("RINGMERGE_FAULT_EIO", format!("{name}@{}", len / 3))
        .args(["compact", "--db", db_s])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "compaction with an EIO succeeded:\n{stdout}"
    );
    assert!(
        stdout.contains("compact status: IO error"),
        "expected IOError: {stdout}"
    );
    let log = std::fs::read_to_string(db.join("LOG")).unwrap();
    assert!(
        log.contains("ringmerge: accelerated") && log.contains("status=IO error"),
        "the error must come from ringmerge's reader mid-stream: {:?}",
        ringmerge_lines(&log)
    );

    // Nothing of the failed job was installed: every key reads back, and without the fault
    // the same compaction now succeeds.
    let out = driver_cmd("native", &["verify", "--db", db_s, "--expect", expect_s]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("corrupt=0 mismatch=0"),
        "{stdout}"
    );
    let out = driver_cmd("native", &["compact", "--db", db_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = driver_cmd("native", &["verify", "--db", db_s, "--expect", expect_s]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("corrupt=0 mismatch=0"),
        "{stdout}"
    );
}
