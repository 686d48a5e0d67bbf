//! The BPF merge against the native one on real files, real io_uring reads into the arena and the
//! real program: same entries, same order, same batches' contents. Needs Linux >= 6.9 and
//! CAP_BPF + CAP_PERFMON (root here); without them the tests fail with the loader's reason. A
//! kernel that refuses BPF arenas to a fully privileged process (asked without our loader) is the
//! one exception: the tests that need the program then record why they did not run.

use super::{engine, Selection};
use crate::ahead::{CompanionSession, Failure, Session};
use crate::block::checksum::ChecksumType;
use crate::block::compression::ctype;
use crate::block::compression::testutil::compress;
use crate::block::testutil::{add_trailer, ikey, BlockBuilder, Rng};
use crate::block::BlockHandle;
use crate::compaction::{CompactionSession, CompactionSpec, MergeEngine, Summary, BATCH_BYTES};
use crate::merge::cursor::Bounds;
use crate::reader::Backend;
use crate::sst_map::{InputFile, SortedRun};
use crate::test_support::skip_without_bpf_arena;
use crate::thread_attrs::ThreadAttrs;
use std::collections::BTreeSet;
use std::path::Path;

/// Writes one "file" of data blocks (with trailers) holding `entries` in order.
fn write_run(
    dir: &Path,
    name: &str,
    entries: &[(Vec<u8>, Vec<u8>)],
    block_size: usize,
) -> InputFile {
    write_run_with(dir, name, entries, block_size, None)
}

/// `write_run`, with every block but each third one compressed with `codec` (as RocksDB leaves a
/// block uncompressed when compression does not pay).
fn write_run_with(
    dir: &Path,
    name: &str,
    entries: &[(Vec<u8>, Vec<u8>)],
    block_size: usize,
    codec: Option<u8>,
) -> InputFile {
    let mut bytes = Vec::new();
    let mut blocks = Vec::new();
    let mut b = BlockBuilder::new(16);
    let mut size = 0;
    let mut flush = |b: BlockBuilder, bytes: &mut Vec<u8>| {
        let raw = b.finish();
        let offset = bytes.len() as u64;
        let (payload, t) = match codec {
            Some(t) if blocks.len() % 3 != 2 => (compress(t, &raw, &[]), t),
            _ => (raw, 0),
        };
        bytes.extend(add_trailer(
            &payload,
            t,
            ChecksumType::Xxh3,
            0x1234_5678,
            offset,
        ));
        blocks.push(BlockHandle {
            offset,
            size: payload.len() as u64,
        });
    };
    let mut pending = 0;
    for (k, v) in entries {
        b.add(k, v, None);
        size += k.len() + v.len() + 3;
        pending += 1;
        if size >= block_size {
            flush(std::mem::replace(&mut b, BlockBuilder::new(16)), &mut bytes);
            size = 0;
            pending = 0;
        }
    }
    if pending > 0 {
        flush(b, &mut bytes);
    }
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    InputFile {
        path,
        file_size: bytes.len() as u64,
        checksum_type: ChecksumType::Xxh3,
        base_context_checksum: 0x1234_5678,
        blocks,
        blocks_maybe_compressed: codec.is_some(),
        compression_dict: Vec::new(),
        global_seqno: 0,
    }
}

/// `k` runs of random entries with globally unique sequence numbers; some user keys repeat
/// across runs (versions), user key lengths 0..=64, values 0..=max_value bytes.
fn make_runs(dir: &Path, k: usize, per_run: usize, max_value: usize, seed: u64) -> Vec<SortedRun> {
    let mut rng = Rng(seed | 1);
    let mut seq = 1u64;
    let shared_keys: Vec<Vec<u8>> = (0..per_run / 2 + 1)
        .map(|i| format!("shared{:08}", i * 7).into_bytes())
        .collect();
    (0..k)
        .map(|r| {
            let mut keys = BTreeSet::new();
            while keys.len() < per_run {
                if rng.below(3) == 0 {
                    keys.insert(shared_keys[rng.below(shared_keys.len())].clone());
                } else {
                    // 0..=64 bytes: short keys exercise the zero-padded prefixes.
                    let len = rng.below(65);
                    let key: Vec<u8> = (0..len).map(|_| b'a' + rng.below(4) as u8).collect();
                    keys.insert(key);
                }
            }
            let entries: Vec<(Vec<u8>, Vec<u8>)> = keys
                .into_iter()
                .map(|u| {
                    seq += 1;
                    let t = if rng.below(10) == 0 { 0 } else { 1 };
                    let vlen = if t == 0 { 0 } else { rng.below(max_value + 1) };
                    let v: Vec<u8> = (0..vlen).map(|i| (i as u64 ^ seq) as u8).collect();
                    (ikey(&u, seq, t), v)
                })
                .collect();
            let block = 512 + rng.below(8192);
            SortedRun {
                files: vec![write_run(dir, &format!("run{r}.sst"), &entries, block)],
            }
        })
        .collect()
}

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// What one merge produced.
struct Drained {
    entries: Entries,
    engine: String,
    /// Values emitted by address into an input block / copied into the batch.
    pinned: usize,
    copied: usize,
    /// Of those, values larger than a batch ([`BATCH_BYTES`]).
    large_pinned: usize,
    large_copied: usize,
}

fn drain(runs: &[SortedRun], bounds: &Bounds, merge: MergeEngine, budget: usize) -> Drained {
    drain_with(runs, bounds, merge, budget, false)
}

/// The spec every merge test uses: buffered reads, io_uring where it is available, no read
/// rate limit.
fn spec_for(
    runs: &[SortedRun],
    bounds: &Bounds,
    merge: MergeEngine,
    budget: usize,
) -> CompactionSpec {
    CompactionSpec {
        runs: runs.to_vec(),
        bounds: bounds.clone(),
        direct: false,
        memory_budget: budget,
        backend: Backend::Auto,
        merge,
        throttle: None,
        accounting: None,
        max_inflight_bytes: 0,
        io_priority: 0,
        read_faults: None,
        pad_min_timestamp: 0,
    }
}

/// `spec` opened on this thread's companion, which must be there.
fn open_ahead(spec: CompactionSpec) -> CompanionSession {
    match CompanionSession::open(spec, ThreadAttrs::current()) {
        Ok(opened) => opened.expect("open"),
        Err(unserved) => panic!("no merge-ahead thread: {}", unserved.1),
    }
}

fn drain_with(
    runs: &[SortedRun],
    bounds: &Bounds,
    merge: MergeEngine,
    budget: usize,
    ahead: bool,
) -> Drained {
    let (drained, summary) = drain_summary(runs, bounds, merge, budget, ahead);
    assert!(
        summary.bpf_unavailable.is_none(),
        "{:?}",
        summary.bpf_unavailable
    );
    drained
}

/// `drain_with`, also returning the session's summary (and not asserting that a BPF merge
/// asked for ran).
fn drain_summary(
    runs: &[SortedRun],
    bounds: &Bounds,
    merge: MergeEngine,
    budget: usize,
    ahead: bool,
) -> (Drained, Summary) {
    let spec = spec_for(runs, bounds, merge, budget);
    let (opened, unavailable) = Session::open(spec, ahead);
    assert!(
        unavailable.is_none(),
        "no merge-ahead thread: {unavailable:?}"
    );
    let mut s = opened.expect("open");
    let mut out: Entries = Vec::new();
    // The previous batch's values by address (and where they are in `out`), to check they
    // survive the making of the next batch: the contract C++ relies on, pinned values included.
    let mut previous: Vec<(u64, usize, usize, u32)> = Vec::new();
    let (mut pinned, mut copied) = (0usize, 0usize);
    let (mut large_pinned, mut large_copied) = (0usize, 0usize);
    while s.next_batch().expect("batch") {
        if ahead {
            // Let the companion run ahead and reuse whatever it believes it may before the
            // previous batch is checked: a chunk given back one batch early gets overwritten.
            std::thread::sleep(std::time::Duration::from_micros(300));
        }
        for &(addr, len, at, pinned) in &previous {
            // SAFETY: the batch before the current one stays readable until the next
            // next_batch (BatchEntry's contract, which this checks); len > 0 (see below).
            let now = unsafe { std::slice::from_raw_parts(addr as *const u8, len) };
            assert_eq!(now, &out[at].1[..], "a previous batch's value changed ({merge:?}, ahead {ahead}, pinned {pinned}, entry {at})");
        }
        previous.clear();
        for i in 0..s.batch_entries().len() {
            let (k, v) = s.batch_entry(i);
            let large = v.len() > BATCH_BYTES;
            if s.batch_entries()[i].pinned != 0 {
                pinned += 1;
                large_pinned += usize::from(large);
            } else {
                copied += 1;
                large_copied += usize::from(large);
            }
            if !v.is_empty() {
                previous.push((
                    v.as_ptr() as u64,
                    v.len(),
                    out.len(),
                    s.batch_entries()[i].pinned,
                ));
            }
            out.push((k.to_vec(), v.to_vec()));
        }
    }
    let summary = s.summary();
    assert_eq!(summary.entries as usize, out.len());
    let drained = Drained {
        entries: out,
        engine: summary.merge_engine.to_owned(),
        pinned,
        copied,
        large_pinned,
        large_copied,
    };
    (drained, summary)
}

/// Merges the runs natively and with both BPF selections and compares every entry; returns
/// the BPF merges' (pinned, copied) value counts.
fn check(k: usize, per_run: usize, max_value: usize, bounds: Bounds, seed: u64) -> (usize, usize) {
    check_with_budget(k, per_run, max_value, bounds, seed, 8 << 20)
}

fn check_with_budget(
    k: usize,
    per_run: usize,
    max_value: usize,
    bounds: Bounds,
    seed: u64,
    budget: usize,
) -> (usize, usize) {
    if let Err(e) = engine() {
        panic!(
            "the BPF merge program must load here (root, Linux >= 6.9): {e}\n{}",
            super::libbpf_log()
        );
    }
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let runs = make_runs(dir.path(), k, per_run, max_value, seed);
    compare(&runs, &bounds, budget)
}

/// `check` on given runs.
fn compare(runs: &[SortedRun], bounds: &Bounds, budget: usize) -> (usize, usize) {
    let k = runs.len();
    let native = drain(runs, bounds, MergeEngine::Native, budget);
    assert!(!native.entries.is_empty());
    // Both merges pin values unless a run cannot hold another chunk; `drain` checked that the
    // previous batch's values survived every batch.
    assert!(native.pinned > 0, "k={k}: the native merge pinned no value");
    let (mut pinned, mut copied) = (0, 0);
    for sel in [Selection::Linear, Selection::Heap] {
        let bpf = drain(runs, bounds, MergeEngine::Bpf(Some(sel)), budget);
        assert!(bpf.engine.starts_with("bpf"), "{}", bpf.engine);
        assert_eq!(bpf.entries.len(), native.entries.len(), "{sel:?} k={k}");
        for (i, (a, b)) in bpf.entries.iter().zip(&native.entries).enumerate() {
            assert!(a == b, "{sel:?} k={k}: entry {i} differs");
        }
        // Values are pinned unless a run cannot hold another chunk.
        assert!(bpf.pinned > 0, "{sel:?} k={k}: no value was pinned");
        pinned += bpf.pinned;
        copied += bpf.copied;
    }
    // Merge-ahead: the same stream from the companion thread (`drain` checked the previous
    // batch after every batch); both merges still pin values.
    for merge in [MergeEngine::Native, MergeEngine::Bpf(None)] {
        let ahead = drain_with(runs, bounds, merge, budget, true);
        assert_eq!(
            ahead.entries.len(),
            native.entries.len(),
            "ahead {merge:?} k={k}"
        );
        for (i, (a, b)) in ahead.entries.iter().zip(&native.entries).enumerate() {
            assert!(a == b, "ahead {merge:?} k={k}: entry {i} differs");
        }
        assert!(ahead.pinned > 0, "ahead {merge:?} k={k}: nothing pinned");
    }
    (pinned, copied)
}

#[test]
fn one_run() {
    if skip_without_bpf_arena("merge::bpf::tests::one_run") {
        return;
    }
    check(1, 3000, 300, Bounds::default(), 1);
}

#[test]
fn six_and_seven_runs() {
    if skip_without_bpf_arena("merge::bpf::tests::six_and_seven_runs") {
        return;
    }
    check(6, 1500, 200, Bounds::default(), 2);
    check(7, 1500, 200, Bounds::default(), 3);
}

#[test]
fn sixty_four_runs() {
    if skip_without_bpf_arena("merge::bpf::tests::sixty_four_runs") {
        return;
    }
    check(64, 200, 100, Bounds::default(), 4);
}

#[test]
fn clipped_to_bounds() {
    if skip_without_bpf_arena("merge::bpf::tests::clipped_to_bounds") {
        return;
    }
    let bounds = Bounds {
        start: Some(b"b".to_vec()),
        end: Some(b"c".to_vec()),
        ..Default::default()
    };
    check(4, 3000, 100, bounds, 5);
    let start_only = Bounds {
        start: Some(b"cab".to_vec()),
        end: None,
        ..Default::default()
    };
    check(3, 2000, 50, start_only, 6);
}

#[test]
fn large_values_and_batches() {
    if skip_without_bpf_arena("merge::bpf::tests::large_values_and_batches") {
        return;
    }
    // Values up to 300 KiB: a run's chunk is used up within a batch or two, so runs hold
    // chunks and must copy some values, and a copied value larger than the output's headroom
    // forces a bigger buffer.
    let (pinned, copied) = check(2, 40, 300 << 10, Bounds::default(), 7);
    assert!(pinned > 0 && copied > 0, "pinned {pinned}, copied {copied}");
}

#[test]
fn positioning_resumes_where_it_stopped() {
    if skip_without_bpf_arena("merge::bpf::tests::positioning_resumes_where_it_stopped") {
        return;
    }
    // Before the first entry is emitted every run is positioned; a run that has to go back to
    // user space while being positioned (its first chunks all before the start bound: NEED_CHUNK;
    // a first key longer than the key buffer: NEED_KEY) must not make the runs positioned
    // before it advance again when the program is called back (each would lose an entry).
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let mut seq = 0u64;
    let mut entries = |keys: Vec<Vec<u8>>| -> Vec<(Vec<u8>, Vec<u8>)> {
        keys.into_iter()
            .map(|u| {
                seq += 1;
                (ikey(&u, seq, 1), vec![seq as u8; 100])
            })
            .collect()
    };
    let run0 = entries((0..2000).map(|i| format!("k{i:05}").into_bytes()).collect());
    let run1 = entries(
        (0..3000)
            .map(|i| format!("a{i:05}").into_bytes())
            .chain((0..500).map(|i| format!("m{i:05}").into_bytes()))
            .collect(),
    );
    let mut long = vec![b'n'; 5000];
    long.extend_from_slice(b"0");
    let run2 = entries(
        std::iter::once(long)
            .chain((0..500).map(|i| format!("p{i:05}").into_bytes()))
            .collect(),
    );
    let runs: Vec<SortedRun> = [run0, run1, run2]
        .iter()
        .enumerate()
        .map(|(r, e)| SortedRun {
            files: vec![write_run(dir.path(), &format!("run{r}.sst"), e, 4096)],
        })
        .collect();
    let start = Bounds {
        start: Some(b"k00500".to_vec()),
        end: None,
        ..Default::default()
    };
    // A small budget makes run 1's first chunks hold only keys before the start bound.
    compare(&runs, &start, 1 << 20);
    compare(&runs, &Bounds::default(), 1 << 20);
    // And the native merge (compare's reference) loses nothing either: 1500 + 500 + 501 keys
    // from the start bound on, 2000 + 3500 + 501 in all.
    let count = |b: &Bounds| drain(&runs, b, MergeEngine::Native, 1 << 20).entries.len();
    assert_eq!(count(&start), 2501);
    assert_eq!(count(&Bounds::default()), 6001);
}

#[test]
fn pinned_values_outlive_the_next_batch() {
    if skip_without_bpf_arena("merge::bpf::tests::pinned_values_outlive_the_next_batch") {
        return;
    }
    // Small chunks (a 1 MiB budget over 4 runs): runs move through many chunks per batch, so
    // held chunks are released and their buffers refilled all the time. `drain` checks that
    // the previous batch's values are unchanged after each batch, which fails if a chunk is
    // given back one batch too early.
    let (pinned, copied) = check_with_budget(4, 3000, 2000, Bounds::default(), 8, 1 << 20);
    assert!(pinned > 0 && copied > 0, "pinned {pinned}, copied {copied}");
}

#[test]
fn native_merge_of_partly_compressed_runs() {
    // The same entries in uncompressed runs and in runs whose blocks are mostly LZ4 or ZSTD: the
    // native merge yields the same stream, copies the values of decoded blocks (their buffer is
    // reused for the next block) and pins those of the uncompressed ones, and `drain` checks
    // after every batch that the previous batch's values are unchanged. A small budget keeps
    // chunks small.
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let plain = make_runs(dir.path(), 5, 3000, 700, 11);
    for codec in [ctype::LZ4, ctype::ZSTD] {
        let packed: Vec<SortedRun> = plain
            .iter()
            .enumerate()
            .map(|(r, run)| {
                let f = &run.files[0];
                let entries = read_back(f);
                SortedRun {
                    files: vec![write_run_with(
                        dir.path(),
                        &format!("packed{codec}-{r}.sst"),
                        &entries,
                        4096,
                        Some(codec),
                    )],
                }
            })
            .collect();
        let want = drain(&plain, &Bounds::default(), MergeEngine::Native, 1 << 20);
        let got = drain(&packed, &Bounds::default(), MergeEngine::Native, 1 << 20);
        assert_eq!(got.entries.len(), want.entries.len());
        assert!(got.entries == want.entries, "codec {codec}: streams differ");
        assert!(
            got.pinned > 0 && got.copied > 0,
            "pinned {}, copied {}",
            got.pinned,
            got.copied
        );
    }
}

/// One data block of a test file: its entries and the codec it is written with (None: stored
/// uncompressed).
type TestBlock = (Entries, Option<u8>);

/// Writes one file of the given blocks, back to back with their trailers.
fn write_blocks(dir: &Path, name: &str, blocks: &[TestBlock]) -> InputFile {
    let mut bytes = Vec::new();
    let mut handles = Vec::new();
    for (entries, codec) in blocks {
        let mut b = BlockBuilder::new(16);
        for (k, v) in entries {
            b.add(k, v, None);
        }
        let raw = b.finish();
        let offset = bytes.len() as u64;
        let (payload, t) = match codec {
            Some(t) => (compress(*t, &raw, &[]), *t),
            None => (raw, 0),
        };
        bytes.extend(add_trailer(
            &payload,
            t,
            ChecksumType::Xxh3,
            0x1234_5678,
            offset,
        ));
        handles.push(BlockHandle {
            offset,
            size: payload.len() as u64,
        });
    }
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    InputFile {
        path,
        file_size: bytes.len() as u64,
        checksum_type: ChecksumType::Xxh3,
        base_context_checksum: 0x1234_5678,
        blocks: handles,
        blocks_maybe_compressed: blocks.iter().any(|(_, c)| c.is_some()),
        compression_dict: Vec::new(),
        global_seqno: 0,
    }
}

/// Every entry written, as (user key, sequence, value).
type Written = Vec<(Vec<u8>, u64, Vec<u8>)>;

/// What a block of the large-values runs holds.
enum Shape {
    /// `n` small entries.
    Small(usize, Option<u8>),
    /// Two small entries and a value of `len` bytes: random (it does not compress) or
    /// repetitive (a compressed block of it is small, decoded it is `len` bytes).
    Large(usize, bool, Option<u8>),
}

/// Runs whose blocks are shaped by `shapes` (run r's user keys `k<2j + r % 2>`, so runs 0 and
/// 2 hold versions of the same keys), and every entry as (user key, sequence, value), for the
/// expected stream.
fn runs_with_large_values(dir: &Path, shapes: &[Vec<Shape>]) -> (Vec<SortedRun>, Written) {
    let mut rng = Rng(0x1a2b_3c4d_5e6f);
    let mut seq = 0u64;
    let mut all = Vec::new();
    let mut runs = Vec::new();
    for (r, blocks) in shapes.iter().enumerate() {
        let mut j = 0usize;
        let mut entry = |len: usize, random: bool, rng: &mut Rng| {
            seq += 1;
            let user = format!("k{:07}", 2 * j + r % 2).into_bytes();
            j += 1;
            let value: Vec<u8> = if random {
                (0..len).map(|_| rng.next_u64() as u8).collect()
            } else {
                (0..len).map(|i| (i % 251) as u8 ^ seq as u8).collect()
            };
            all.push((user.clone(), seq, value.clone()));
            (ikey(&user, seq, 1), value)
        };
        let blocks: Vec<TestBlock> = blocks
            .iter()
            .map(|shape| match *shape {
                Shape::Small(n, codec) => {
                    let entries = (0..n)
                        .map(|_| {
                            let len = rng.below(300);
                            entry(len, false, &mut rng)
                        })
                        .collect();
                    (entries, codec)
                }
                Shape::Large(len, random, codec) => {
                    let entries = vec![
                        entry(10, false, &mut rng),
                        entry(20, false, &mut rng),
                        entry(len, random, &mut rng),
                    ];
                    (entries, codec)
                }
            })
            .collect();
        runs.push(SortedRun {
            files: vec![write_blocks(dir, &format!("large{r}.sst"), &blocks)],
        });
    }
    (runs, all)
}

/// The merged stream of `all` within `bounds`: user key ascending, then sequence descending.
fn expected_stream(all: &Written, bounds: &Bounds) -> Entries {
    let mut sorted: Vec<_> = all
        .iter()
        .filter(|(u, _, _)| {
            bounds.start.as_ref().is_none_or(|s| u >= s)
                && bounds.end.as_ref().is_none_or(|e| u < e)
        })
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    sorted
        .into_iter()
        .map(|(u, seq, v)| (ikey(u, *seq, 1), v.clone()))
        .collect()
}

#[test]
fn native_merge_hands_over_values_larger_than_a_batch() {
    // Three runs read 3 deep in 8 MiB: a read size of 768 KiB. Run 0 holds a 3 MiB value
    // (uncompressed), a 5 MiB one in an LZ4 block (random bytes: the block stays over 5 MiB)
    // followed by a small LZ4 block (it decodes into a fresh buffer: the 5 MiB value's, held
    // with its chunk, must stay intact while a batch points into it), then a 2 MiB and a
    // 1.2 MiB LZ4 one back to back: five oversized blocks. Run 1 holds a 2 MiB repetitive value
    // in a ZSTD block of a few KiB (a regular chunk that decodes to more than a batch) and a
    // 1.5 MiB uncompressed one. Run 2 holds versions of run 0's keys.
    const MIB: usize = 1 << 20;
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let shapes = vec![
        vec![
            Shape::Small(60, None),
            Shape::Large(3 * MIB, true, None),
            Shape::Small(40, Some(ctype::LZ4)),
            Shape::Large(5 * MIB, true, Some(ctype::LZ4)),
            Shape::Small(40, Some(ctype::LZ4)),
            Shape::Large(2 * MIB, true, None),
            Shape::Large(6 * MIB / 5, true, Some(ctype::LZ4)),
            Shape::Small(80, None),
        ],
        vec![
            Shape::Small(50, Some(ctype::ZSTD)),
            Shape::Large(2 * MIB, false, Some(ctype::ZSTD)),
            Shape::Small(30, None),
            Shape::Large(3 * MIB / 2, true, None),
            Shape::Small(40, None),
        ],
        vec![Shape::Small(200, None), Shape::Small(200, Some(ctype::LZ4))],
    ];
    let (runs, all) = runs_with_large_values(dir.path(), &shapes);
    let budget = 8 * MIB;
    let large: Vec<&Vec<u8>> = all
        .iter()
        .filter(|(_, _, v)| v.len() > BATCH_BYTES)
        .map(|(u, _, _)| u)
        .collect();
    assert_eq!(large.len(), 6);
    // The whole stream, and one clipped inside the oversized blocks (from the 3 MiB value's key
    // to the 2 MiB uncompressed one's: the cursor stops inside run 0's oversized chunk).
    let clipped = Bounds {
        start: Some(large[0].clone()),
        end: Some(large[3].clone()),
        ..Default::default()
    };
    for bounds in [Bounds::default(), clipped] {
        let want = expected_stream(&all, &bounds);
        for ahead in [false, true] {
            let (got, summary) = drain_summary(&runs, &bounds, MergeEngine::Native, budget, ahead);
            let what = format!("ahead {ahead} bounds {:?}", bounds.start.is_some());
            assert_eq!(got.entries.len(), want.len(), "{what}");
            assert!(got.entries == want, "{what}: streams differ");
            let st = &summary.reader;
            if bounds.start.is_none() {
                assert_eq!(st.oversized_reads, 5, "{what}");
                // Every value of an oversized block is handed over where it lies (the LZ4 ones in
                // their decoded blocks, held with their chunks), back to back or not, ahead or
                // in line; the 2 MiB value decoded from a regular chunk is copied.
                assert_eq!((got.large_pinned, got.large_copied), (5, 1), "{what}");
            }
            // At least the largest oversized block at once, and within the documented bound:
            // depth (3) x the run's largest oversized span, per run.
            assert!(st.oversized_peak_bytes > 0, "{what}");
            assert!(
                st.oversized_peak_bytes <= (3 * (5 * MIB + 4096) + 3 * (3 * MIB / 2 + 4096)) as u64,
                "{what}: {st:?}"
            );
        }
    }
    // The BPF merge leaves oversized blocks to the native merge, saying why (apart from the
    // program being unavailable, which is what this kernel may say first).
    let (got, summary) = drain_summary(
        &runs,
        &Bounds::default(),
        MergeEngine::Bpf(None),
        budget,
        false,
    );
    assert_eq!(got.engine, "native");
    assert!(got.entries == expected_stream(&all, &Bounds::default()));
    if super::kernel_allows_arena().is_ok() {
        assert_eq!(summary.bpf_unavailable, None);
        let why = summary
            .bpf_declined
            .expect("the BPF merge was not used: why");
        assert!(why.contains("larger than the read size"), "{why}");
    } else {
        assert!(summary.bpf_unavailable.is_some() && summary.bpf_declined.is_none());
    }
}

/// The entries of a file written by `write_run` (uncompressed), in order.
fn read_back(f: &InputFile) -> Entries {
    let bytes = std::fs::read(&f.path).unwrap();
    let mut out = Vec::new();
    for h in &f.blocks {
        let raw = &bytes[h.offset as usize..][..h.size as usize];
        let mut c = crate::block::data::DataBlockCursor::new();
        c.reset(raw).unwrap();
        while c.next(raw).unwrap() {
            out.push((c.key().to_vec(), c.value(raw).to_vec()));
        }
    }
    out
}

#[test]
fn verifier_budget_of_both_selections() {
    if skip_without_bpf_arena("merge::bpf::tests::verifier_budget_of_both_selections") {
        return;
    }
    let e = engine().expect("BPF merge program loads");
    // The budget: the kernel's limit is 1M processed instructions; staying well below leaves
    // room for verifier changes between kernel versions (this test says when it shrinks).
    const BUDGET: u32 = 200_000;
    for sel in [Selection::Linear, Selection::Heap] {
        let n = e.verified_insns(sel).unwrap();
        eprintln!("{sel:?}: verified_insns = {n}");
        assert!(
            n > 0 && n < BUDGET,
            "{sel:?} verified {n} insns, budget {BUDGET}"
        );
    }
}

/// `k` runs of `per_run` fixed-size records (16-byte user keys, `value_len`-byte values), user
/// keys spread evenly so the runs interleave.
fn fixed_runs(dir: &Path, k: usize, per_run: usize, value_len: usize) -> Vec<SortedRun> {
    let mut seq = 1u64;
    (0..k)
        .map(|r| {
            let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..per_run)
                .map(|i| {
                    seq += 1;
                    let user = format!("{:016}", i * k + r).into_bytes();
                    (ikey(&user, seq, 1), vec![(seq & 0xff) as u8; value_len])
                })
                .collect();
            SortedRun {
                files: vec![write_run(dir, &format!("fixed{r}.sst"), &entries, 4096)],
            }
        })
        .collect()
}

/// BENCHMARK, not a test (it asserts nothing about speed): merge throughput of the native merge
/// and both BPF selections by input count, on 128-byte records (16-byte internal keys; another
/// size with RINGMERGE_BENCH_RECORD) read from the page cache. Run by scripts/bench-merge.sh, which keeps the machine otherwise idle.
#[test]
#[ignore = "benchmark: run with scripts/bench-merge.sh"]
fn merge_throughput_by_inputs() {
    use std::time::Instant;
    engine().expect("BPF merge program loads");
    let total_mib: usize = std::env::var("RINGMERGE_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    // Record size (16-byte internal key + value); db_bench's default workload uses 1 KiB values.
    let record: usize = std::env::var("RINGMERGE_BENCH_RECORD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
        .max(17);
    let reps = 3;
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let mut rows = Vec::new();
    println!("\n| K | engine | end-to-end MiB/s | merge-only MiB/s |");
    println!("|---|---|---|---|");
    for k in [2usize, 4, 8, 16, 32] {
        let per_run = (total_mib << 20) / record / k;
        let runs = fixed_runs(dir.path(), k, per_run, record - 16);
        let variants = [
            ("native", MergeEngine::Native),
            ("bpf-linear", MergeEngine::Bpf(Some(Selection::Linear))),
            ("bpf-heap", MergeEngine::Bpf(Some(Selection::Heap))),
        ];
        let mut times: Vec<Vec<(f64, f64, usize)>> = vec![Vec::new(); variants.len()];
        // Interleaved reps; the first pass also warms the page cache and the arena.
        for rep in 0..=reps {
            for (vi, (_, choice)) in variants.iter().enumerate() {
                let spec = spec_for(&runs, &Bounds::default(), *choice, 64 << 20);
                let t0 = Instant::now();
                let mut s = CompactionSession::open(spec).unwrap();
                let mut bytes = 0;
                while s.next_batch().unwrap() {
                    bytes += s
                        .batch_entries()
                        .iter()
                        .map(|e| (e.key_len + e.value_len) as usize)
                        .sum::<usize>();
                }
                let wall = t0.elapsed().as_secs_f64();
                let merge = s.summary().merge.as_secs_f64();
                if rep > 0 {
                    times[vi].push((wall, merge, bytes));
                }
            }
        }
        for (vi, (name, _)) in variants.iter().enumerate() {
            let med = |f: fn(&(f64, f64, usize)) -> f64| {
                let mut v: Vec<f64> = times[vi].iter().map(f).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let bytes = times[vi][0].2 as f64 / (1 << 20) as f64;
            let (e2e, merge) = (bytes / med(|t| t.0), bytes / med(|t| t.1));
            println!("| {k} | {name} | {e2e:.0} | {merge:.0} |");
            rows.push(format!(
                "{{\"inputs\": {k}, \"engine\": \"{name}\", \"mib\": {bytes:.1}, \
                 \"end_to_end_mib_s\": {e2e:.1}, \"merge_only_mib_s\": {merge:.1}}}"
            ));
        }
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("merge-throughput.json"),
        format!("[\n  {}\n]\n", rows.join(",\n  ")),
    )
    .unwrap();
}

/// A block whose checksum is right but whose entries are not (a writer bug, or damage made before
/// the checksum was computed): both merges must fail with Corruption, never emit garbage.
#[test]
fn malformed_entry_with_valid_checksum_is_corruption() {
    if skip_without_bpf_arena(
        "merge::bpf::tests::malformed_entry_with_valid_checksum_is_corruption",
    ) {
        return;
    }
    engine().expect("BPF merge program loads");
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..50u64)
        .map(|i| {
            (
                ikey(format!("key{i:04}").as_bytes(), 100 + i, 1),
                vec![7u8; 20],
            )
        })
        .collect();
    for (name, tamper) in [
        // The second entry claims a shared prefix longer than the previous key.
        ("shared", 0usize),
        // The first entry's value runs past the block's entries.
        ("bounds", 2usize),
    ] {
        let mut b = BlockBuilder::new(16);
        // Two entries for the bounds case, so a 120-byte value overruns the whole block.
        let n = if tamper == 0 { entries.len() } else { 2 };
        for (k, v) in &entries[..n] {
            b.add(k, v, None);
        }
        let mut payload = b.finish();
        match tamper {
            0 => {
                let second = 3 + entries[0].0.len() + entries[0].1.len();
                payload[second] = 60;
            }
            _ => payload[2] = 120,
        }
        let bytes = add_trailer(&payload, 0, ChecksumType::Xxh3, 0x1234_5678, 0);
        let path = dir.path().join(format!("{name}.sst"));
        std::fs::write(&path, &bytes).unwrap();
        let runs = vec![SortedRun {
            files: vec![InputFile {
                path,
                file_size: bytes.len() as u64,
                checksum_type: ChecksumType::Xxh3,
                base_context_checksum: 0x1234_5678,
                blocks: vec![BlockHandle {
                    offset: 0,
                    size: payload.len() as u64,
                }],
                blocks_maybe_compressed: false,
                compression_dict: Vec::new(),
                global_seqno: 0,
            }],
        }];
        for merge in [MergeEngine::Native, MergeEngine::Bpf(None)] {
            let spec = spec_for(&runs, &Bounds::default(), merge, 8 << 20);
            let outcome = CompactionSession::open(spec.clone()).and_then(|mut s| {
                while s.next_batch()? {}
                Ok(())
            });
            match outcome {
                Err(crate::Error::Corruption(m)) => eprintln!("{name} {merge:?}: {m}"),
                other => panic!("{name} {merge:?}: expected Corruption, got {other:?}"),
            }
            // The same error through merge-ahead, from the companion thread.
            let outcome = match CompanionSession::open(spec, ThreadAttrs::current()) {
                Err(unserved) => panic!("no merge-ahead thread: {}", unserved.1),
                Ok(opened) => opened.and_then(|mut a| {
                    while a.next_batch()? {}
                    Ok(())
                }),
            };
            match outcome {
                Err(Failure::Error(crate::Error::Corruption(m))) => {
                    eprintln!("{name} {merge:?} ahead: {m}")
                }
                other => panic!("{name} {merge:?} ahead: expected Corruption, got {other:?}"),
            }
        }
    }
}

/// The loader owns the object: a second, private engine loads beside the process-wide one,
/// runs, and tears down cleanly (programs closed, arena unmapped) when dropped.
#[test]
fn private_engine_loads_and_tears_down() {
    if skip_without_bpf_arena("merge::bpf::tests::private_engine_loads_and_tears_down") {
        return;
    }
    engine().expect("BPF merge program loads");
    for _ in 0..3 {
        let t0 = std::time::Instant::now();
        let e = super::BpfEngine::load().expect("a second instance loads");
        eprintln!(
            "load (open, verify both programs, map the arena): {:?}",
            t0.elapsed()
        );
        assert!(e.verified_insns(Selection::Heap).unwrap() > 0);
        let (live, _) = e.arena().usage();
        assert_eq!(live, 0);
        drop(e);
    }
}

/// Merge-ahead under the ways a compaction ends: a consumer that stops after one batch (the
/// companion stops and its session is gone when the drop returns), a second merge opened while
/// the first is alive on the same thread (it gets a companion of its own instead of queueing
/// behind the first, which would deadlock), and the thread's companion serving the next merge.
#[test]
fn merge_ahead_stops_early_and_serves_overlapping_merges() {
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let runs = make_runs(dir.path(), 4, 4000, 400, 11);
    let spec = || spec_for(&runs, &Bounds::default(), MergeEngine::Native, 8 << 20);
    let open = open_ahead;
    let want = drain(&runs, &Bounds::default(), MergeEngine::Native, 8 << 20).entries;
    for _ in 0..3 {
        let mut first = open(spec());
        assert!(first.next_batch().expect("batch"));
        let (k0, _) = first.batch_entry(0);
        assert_eq!(k0, &want[0].0[..]);
        // A second merge while the first is alive, drained completely.
        let mut second = open(spec());
        let mut n = 0;
        while second.next_batch().expect("batch") {
            for i in 0..second.batch_entries().len() {
                let (k, v) = second.batch_entry(i);
                assert!(k == &want[n].0[..] && v == &want[n].1[..], "entry {n}");
                n += 1;
            }
        }
        assert_eq!(n, want.len());
        let s = second.summary();
        assert!(s.ahead && s.entries as usize == want.len());
        drop(second);
        // The first stops mid-stream.
        drop(first);
    }
}

/// The companion does compaction work, so it runs with the compaction thread's scheduling
/// attributes (an operator's `LowerThreadPoolCPUPriority`/`IOPriority`, CPU pinning), and it
/// follows them when they change between merges, though it is made once and kept.
#[test]
fn merge_ahead_companion_takes_the_compaction_threads_priority() {
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let runs = make_runs(dir.path(), 3, 2000, 200, 17);
    // A thread of its own plays the compaction thread, so its companion is new and the test's
    // attribute changes stay on it.
    std::thread::spawn(move || {
        let spec = || spec_for(&runs, &Bounds::default(), MergeEngine::Native, 8 << 20);
        let start = ThreadAttrs::current();
        let cpus = start.cpus.clone().expect("affinity");
        // RocksDB's CpuPriority::kLow and IOPRIO_CLASS_IDLE, pinned to the last CPU; then
        // kIdle (SCHED_IDLE) with best-effort I/O level 4, pinned to the first CPU.
        let low = ThreadAttrs {
            nice: 19,
            policy: libc::SCHED_OTHER,
            ioprio: 3 << 13,
            cpus: Some(vec![*cpus.last().unwrap()]),
        };
        let idle = ThreadAttrs {
            nice: 5,
            policy: libc::SCHED_IDLE,
            ioprio: (2 << 13) | 4,
            cpus: Some(vec![cpus[0]]),
        };
        let mut companion = None;
        for want in [&low, &idle, &start] {
            assert!(want.apply().is_empty(), "{:?}", want.apply());
            let mut m = open_ahead(spec());
            assert!(m.next_batch().expect("batch"));
            let tid = m.companion_tid();
            // The same kept companion every time.
            assert_eq!(*companion.get_or_insert(tid), tid);
            assert_eq!(&ThreadAttrs::of(tid), want, "companion {tid}");
            assert!(m.summary().ahead_attrs_unapplied.is_none());
            while m.next_batch().expect("batch") {}
        }
    })
    .join()
    .unwrap();
}

/// A compaction thread pinned to one CPU merges in line: its companion could only take turns
/// with it on that CPU, and the handoff costs CPU. The reason comes back for the LOG line.
#[test]
fn merge_ahead_is_not_used_on_a_single_cpu() {
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let runs = make_runs(dir.path(), 2, 500, 100, 23);
    std::thread::spawn(move || {
        let mut one = ThreadAttrs::current();
        let cpu = one.cpus.as_ref().expect("affinity")[0];
        one.cpus = Some(vec![cpu]);
        assert!(one.apply().is_empty());
        let spec = spec_for(&runs, &Bounds::default(), MergeEngine::Native, 8 << 20);
        let (opened, why) = Session::open(spec, true);
        let mut m = opened.expect("open");
        assert!(matches!(m, Session::Inline(_)), "merged ahead on one CPU");
        let why = why.expect("a reason for the LOG line");
        assert!(why.contains("one CPU only"), "{why}");
        assert!(m.next_batch().expect("batch"));
    })
    .join()
    .unwrap();
}
