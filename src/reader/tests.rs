use super::*;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const MIB: usize = 1 << 20;

fn content(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(size + 8);
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(size);
    v
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let mut f = File::create(&path).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
    path
}

/// Whether O_DIRECT opens and reads work in `dir` (tmpfs refuses O_DIRECT).
fn direct_works(dir: &Path) -> bool {
    let Ok(_) = std::fs::create_dir_all(dir) else {
        return false;
    };
    let path = dir.join(".direct_probe");
    if std::fs::write(&path, vec![7u8; 8192]).is_err() {
        return false;
    }
    let ok = (|| {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .ok()?;
        let mut buf = AlignedBuf::new(4096)?;
        let n = pread::pread(f.as_raw_fd(), buf.as_mut_slice(), 4096).ok()?;
        Some(n == 4096 && buf.as_slice()[0] == 7)
    })()
    .unwrap_or(false);
    let _ = std::fs::remove_file(&path);
    ok
}

/// A scratch directory where O_DIRECT works: the system temp dir if it can, else /var/tmp, else
/// target/ under the crate. Chosen once per test run.
fn scratch() -> tempfile::TempDir {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let candidates = [
            std::env::temp_dir(),
            PathBuf::from("/var/tmp"),
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/reader-test"),
        ];
        for c in &candidates {
            if direct_works(c) {
                eprintln!("reader tests: O_DIRECT works in {}", c.display());
                return c.clone();
            }
        }
        panic!("no directory supports O_DIRECT among {candidates:?}");
    });
    tempfile::tempdir_in(base).unwrap()
}

/// Splits [0, size) into `n` contiguous streams of chunks with varied lengths in [1, max].
fn plans_for(size: usize, n: usize, max: usize, seed: u64, file: usize) -> Vec<Vec<ChunkPlan>> {
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let per = size / n;
    (0..n)
        .map(|s| {
            let start = s * per;
            let end = if s + 1 == n { size } else { start + per };
            let mut plans = Vec::new();
            let mut off = start;
            while off < end {
                let len = (1 + (next() as usize) % max).min(end - off);
                plans.push(ChunkPlan {
                    file,
                    offset: off as u64,
                    len,
                });
                off += len;
            }
            plans
        })
        .collect()
}

fn cfg(budget: usize, depth: usize, backend: Backend) -> ReaderConfig {
    ReaderConfig {
        memory_budget: budget,
        depth_per_stream: depth,
        backend,
        fault: None,
        memory: Memory::Heap,
        throttle: None,
        accounting: None,
        max_inflight_bytes: 0,
        io_priority: 0,
        oversized_above: 0,
    }
}

/// Consumes every stream in a pseudo-random interleaving, checking each chunk against `data`.
/// Returns the number of chunks.
fn drain_and_check(reader: &mut Reader, streams: &[Vec<ChunkPlan>], data: &[&[u8]]) -> usize {
    let mut idx = vec![0usize; streams.len()];
    let mut live: Vec<usize> = (0..streams.len()).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut count = 0;
    while !live.is_empty() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let pick = (x as usize) % live.len();
        let s = live[pick];
        match reader.next_chunk(s).unwrap() {
            Some(chunk) => {
                let p = &streams[s][idx[s]];
                assert_eq!(&chunk.plan, p);
                let want = &data[p.file][p.offset as usize..p.offset as usize + p.len];
                assert!(chunk.bytes() == want, "stream {s} chunk {} differs", idx[s]);
                idx[s] += 1;
                count += 1;
                reader.recycle(chunk);
            }
            None => {
                assert_eq!(idx[s], streams[s].len(), "stream {s} ended early");
                live.swap_remove(pick);
            }
        }
    }
    count
}

#[test]
fn reads_20mib_through_many_streams_both_backends_buffered_and_direct() {
    let dir = scratch();
    let data = content(20 * MIB, 42);
    let path = write_file(dir.path(), "big.sst", &data);
    for direct in [false, true] {
        for backend in [Backend::Auto, Backend::Pread] {
            for (i, &n) in [1usize, 3, 7, 20].iter().enumerate() {
                let budget = 16 * MIB;
                let depth = 1 + i % 3;
                let max = Reader::max_chunk_len(budget, n, depth, direct).min(3 * MIB / 2);
                let streams = plans_for(data.len(), n, max, 7 + i as u64, 0);
                let files = vec![FileSpec {
                    path: path.clone(),
                    direct,
                }];
                let mut r =
                    Reader::new(files, streams.clone(), cfg(budget, depth, backend)).unwrap();
                if backend == Backend::Pread {
                    assert_eq!(r.backend_name(), "pread");
                    assert_eq!(r.fallback_reason(), None);
                } else {
                    assert_eq!(r.backend_name(), "io_uring", "{:?}", r.fallback_reason());
                    assert_eq!(r.fallback_reason(), None);
                }
                let chunks = drain_and_check(&mut r, &streams, &[&data]);
                let st = r.stats();
                assert_eq!(chunks, streams.iter().map(Vec::len).sum::<usize>());
                assert!(st.bytes_read >= data.len() as u64);
                assert!(st.reads_submitted >= chunks as u64);
                assert_eq!(st.short_reads, 0);
                if r.backend_name() == "pread" {
                    assert_eq!(st.enter_calls, 0);
                }
            }
        }
    }
}

#[test]
fn ring_uses_single_issuer_defer_taskrun_and_is_reused() {
    let dir = scratch();
    let data = content(MIB, 1);
    let path = write_file(dir.path(), "a.sst", &data);
    let streams = plans_for(data.len(), 2, 100_000, 3, 0);
    let files = || {
        vec![FileSpec {
            path: path.clone(),
            direct: false,
        }]
    };
    let mut r = Reader::new(files(), streams.clone(), cfg(8 * MIB, 2, Backend::Auto)).unwrap();
    assert_eq!(r.ring_flags(), Some("SINGLE_ISSUER|DEFER_TASKRUN"));
    // A second live Reader on the same thread gets its own ring.
    let mut r2 = Reader::new(files(), streams.clone(), cfg(8 * MIB, 2, Backend::Auto)).unwrap();
    assert_eq!(r2.backend_name(), "io_uring");
    drain_and_check(&mut r2, &streams, &[&data]);
    drain_and_check(&mut r, &streams, &[&data]);
    drop(r2);
    drop(r);
    // The cached ring comes back clean for the next Reader.
    let mut r3 = Reader::new(files(), streams.clone(), cfg(8 * MIB, 2, Backend::Auto)).unwrap();
    drain_and_check(&mut r3, &streams, &[&data]);
}

#[test]
fn batches_many_reads_per_enter() {
    let dir = scratch();
    let data = content(20 * MIB, 5);
    let path = write_file(dir.path(), "b.sst", &data);
    // Fixed 64 KiB chunks, 16 streams 4 deep: 64 reads in flight at a time.
    let streams: Vec<Vec<ChunkPlan>> = (0..16)
        .map(|s| {
            (0..20)
                .map(|i| ChunkPlan {
                    file: 0,
                    offset: ((s * 20 + i) * 65536) as u64,
                    len: 65536,
                })
                .collect()
        })
        .collect();
    let files = vec![FileSpec {
        path,
        direct: false,
    }];
    let mut r = Reader::new(files, streams.clone(), cfg(64 * MIB, 4, Backend::Auto)).unwrap();
    let chunks = drain_and_check(&mut r, &streams, &[&data]);
    let st = r.stats();
    assert_eq!(chunks, 320);
    assert_eq!(st.reads_submitted, 320);
    assert!(
        st.enter_calls * 8 <= chunks as u64,
        "{} enter calls for {chunks} chunks",
        st.enter_calls
    );
}

#[test]
fn short_reads_are_continued() {
    let dir = scratch();
    let data = content(3 * MIB + 1234, 9);
    let path = write_file(dir.path(), "short.sst", &data);
    for direct in [false, true] {
        for backend in [Backend::Auto, Backend::Pread] {
            let streams = plans_for(data.len(), 3, 300_000, 11, 0);
            let files = vec![FileSpec {
                path: path.clone(),
                direct,
            }];
            let mut c = cfg(16 * MIB, 2, backend);
            c.fault = Some(FaultSpec {
                short_reads: true,
                ..FaultSpec::default()
            });
            let mut r = Reader::new(files, streams.clone(), c).unwrap();
            let chunks = drain_and_check(&mut r, &streams, &[&data]);
            let st = r.stats();
            assert!(
                st.short_reads >= chunks as u64,
                "{st:?} for {chunks} chunks"
            );
            assert!(st.reads_submitted > 2 * chunks as u64);
        }
    }
}

#[test]
fn eio_fault_fails_only_the_matching_file() {
    let dir = scratch();
    let good = content(MIB, 1);
    let bad = content(MIB, 2);
    let good_path = write_file(dir.path(), "good.sst", &good);
    let bad_path = write_file(dir.path(), "bad.sst", &bad);
    for backend in [Backend::Auto, Backend::Pread] {
        let mut streams = plans_for(good.len(), 1, 200_000, 1, 0);
        streams.extend(plans_for(bad.len(), 1, 200_000, 2, 1));
        let files = vec![
            FileSpec {
                path: good_path.clone(),
                direct: false,
            },
            FileSpec {
                path: bad_path.clone(),
                direct: false,
            },
        ];
        let mut c = cfg(16 * MIB, 2, backend);
        c.fault = Some(FaultSpec {
            eio_path_contains: Some("bad.sst".into()),
            ..FaultSpec::default()
        });
        let mut r = Reader::new(files, streams.clone(), c).unwrap();
        let err = r.next_chunk(1).unwrap_err();
        let Error::Io(msg) = &err else {
            panic!("{err:?}")
        };
        let want = format!(
            "While reading {} at offset 0 len {}: Input/output error",
            bad_path.display(),
            streams[1][0].len
        );
        assert_eq!(msg, &want);
        // Sticky: the stream keeps failing the same way.
        assert_eq!(r.next_chunk(1).unwrap_err(), err);
        // The other stream is unaffected.
        drain_and_check(&mut r, &streams[..1], &[&good]);
    }
}

#[test]
fn read_past_eof_is_corruption() {
    let dir = scratch();
    let data = content(100_000, 3);
    let path = write_file(dir.path(), "trunc.sst", &data);
    for direct in [false, true] {
        for backend in [Backend::Auto, Backend::Pread] {
            let streams = vec![
                vec![
                    ChunkPlan {
                        file: 0,
                        offset: 0,
                        len: 50_000,
                    },
                    ChunkPlan {
                        file: 0,
                        offset: 90_000,
                        len: 20_000,
                    },
                ],
                vec![ChunkPlan {
                    file: 0,
                    offset: 200_000,
                    len: 5_000,
                }],
            ];
            let files = vec![FileSpec {
                path: path.clone(),
                direct,
            }];
            let mut r = Reader::new(files, streams, cfg(MIB, 2, backend)).unwrap();
            let c = r.next_chunk(0).unwrap().unwrap();
            assert_eq!(c.bytes(), &data[..50_000]);
            r.recycle(c);
            let p = path.display();
            assert_eq!(
                r.next_chunk(0).unwrap_err(),
                Error::Corruption(format!(
                    "truncated block read from {p} offset 90000, expected 20000 bytes, got 10000"
                )),
                "direct {direct} {backend:?}"
            );
            assert_eq!(
                r.next_chunk(1).unwrap_err(),
                Error::Corruption(format!(
                    "truncated block read from {p} offset 200000, expected 5000 bytes, got 0"
                ))
            );
        }
    }
}

/// `max_inflight_bytes` bounds what the kernel holds at once (at least one read always goes
/// out), on both backends' io_uring path, O_DIRECT and buffered, and every chunk still arrives
/// intact; unbounded, the same plan puts more than the bound in flight at open, so the check
/// can fail.
#[test]
fn reads_in_flight_stay_within_the_byte_bound() {
    let dir = scratch();
    let data = content(24 * MIB, 12);
    let path = write_file(dir.path(), "bound.sst", &data);
    let bound = 3 * MIB;
    for direct in [true, false] {
        let streams = plans_for(data.len(), 8, MIB, 7, 0);
        let files = || {
            vec![FileSpec {
                path: path.clone(),
                direct,
            }]
        };
        let r = Reader::new(files(), streams.clone(), cfg(64 * MIB, 3, Backend::Auto)).unwrap();
        assert_eq!(r.backend_name(), "io_uring");
        let unbounded_at_open = r.inflight_bytes() + r.stats.bytes_read as usize;
        assert!(unbounded_at_open > bound, "{unbounded_at_open}");
        drop(r);

        let mut c = cfg(64 * MIB, 3, Backend::Auto);
        c.max_inflight_bytes = bound;
        let mut r = Reader::new(files(), streams.clone(), c).unwrap();
        let mut idx = vec![0usize; streams.len()];
        let mut peak = 0;
        let mut s = 0;
        let mut done = 0;
        while done < streams.len() {
            s = (s + 3) % streams.len();
            assert!(
                r.inflight() <= 1 || r.inflight_bytes() <= bound,
                "{}",
                r.inflight_bytes()
            );
            peak = peak.max(r.inflight_bytes());
            if idx[s] == usize::MAX {
                continue;
            }
            match r.next_chunk(s).unwrap() {
                Some(chunk) => {
                    let p = &streams[s][idx[s]];
                    assert_eq!(chunk.bytes(), &data[p.offset as usize..][..p.len]);
                    idx[s] += 1;
                    r.recycle(chunk);
                }
                None => {
                    idx[s] = usize::MAX;
                    done += 1;
                }
            }
        }
        // Page-cache reads may all complete inside their enter; O_DIRECT ones wait for the disk.
        assert!(
            peak <= bound && (peak > 0 || !direct),
            "direct={direct} peak {peak}"
        );
        assert_eq!(r.inflight_bytes(), 0);
    }
}

#[test]
fn drop_with_reads_in_flight_waits_for_them() {
    let dir = scratch();
    let data = content(16 * MIB, 4);
    let path = write_file(dir.path(), "drop.sst", &data);
    for direct in [true, false] {
        for round in 0..3 {
            let streams = plans_for(data.len(), 8, MIB, round, 0);
            let files = vec![FileSpec {
                path: path.clone(),
                direct,
            }];
            let mut r =
                Reader::new(files, streams.clone(), cfg(32 * MIB, 3, Backend::Auto)).unwrap();
            if round > 0 {
                // Mid-stream, holding a chunk across the drop too.
                let c = r.next_chunk(round as usize).unwrap().unwrap();
                let held = r.next_chunk(0).unwrap().unwrap();
                r.recycle(c);
                drop(r);
                assert_eq!(held.bytes(), &data[..held.plan.len]);
            } else {
                // Page-cache reads may complete inside the submitting enter; O_DIRECT ones from
                // the disk do not.
                if direct && r.backend_name() == "io_uring" {
                    assert!(r.inflight() > 0);
                }
                drop(r);
            }
        }
        // The thread's ring is clean afterwards.
        let streams = plans_for(data.len(), 4, MIB, 99, 0);
        let files = vec![FileSpec {
            path: path.clone(),
            direct,
        }];
        let mut r = Reader::new(files, streams.clone(), cfg(32 * MIB, 2, Backend::Auto)).unwrap();
        drain_and_check(&mut r, &streams, &[&data]);
    }
}

#[test]
fn drop_after_error_with_reads_in_flight() {
    let dir = scratch();
    let data = content(4 * MIB, 8);
    let path = write_file(dir.path(), "err.sst", &data);
    let mut streams = plans_for(data.len(), 4, 256 * 1024, 5, 0);
    streams[0].insert(
        0,
        ChunkPlan {
            file: 0,
            offset: 10 * MIB as u64,
            len: 4096,
        },
    );
    let files = vec![FileSpec {
        path: path.clone(),
        direct: true,
    }];
    let mut r = Reader::new(files, streams, cfg(16 * MIB, 4, Backend::Auto)).unwrap();
    assert!(matches!(r.next_chunk(0), Err(Error::Corruption(_))));
    drop(r);
    let streams = plans_for(data.len(), 2, 256 * 1024, 6, 0);
    let files = vec![FileSpec { path, direct: true }];
    let mut r = Reader::new(files, streams.clone(), cfg(16 * MIB, 4, Backend::Auto)).unwrap();
    drain_and_check(&mut r, &streams, &[&data]);
}

#[test]
fn budget_limits() {
    let dir = scratch();
    let data = content(2 * MIB, 6);
    let path = write_file(dir.path(), "budget.sst", &data);
    let files = |direct| {
        vec![FileSpec {
            path: path.clone(),
            direct,
        }]
    };
    // Too big for even one buffer per stream.
    let streams = vec![
        vec![ChunkPlan {
            file: 0,
            offset: 0,
            len: MIB
        }];
        2
    ];
    match Reader::new(files(false), streams, cfg(MIB, 2, Backend::Auto)) {
        Err(Error::NotSupported(m)) => assert!(m.contains("memory budget"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("accepted"),
    }
    // max_chunk_len is exact for the worst O_DIRECT offset, and depth shrinks to fit.
    let budget = 3 * MIB;
    for direct in [false, true] {
        let max = Reader::max_chunk_len(budget, 3, 2, direct);
        let off = if direct { 4095 } else { 1 };
        let streams: Vec<Vec<ChunkPlan>> = (0..3)
            .map(|_| {
                vec![
                    ChunkPlan {
                        file: 0,
                        offset: off,
                        len: max
                    };
                    2
                ]
            })
            .collect();
        let mut r = Reader::new(
            files(direct),
            streams.clone(),
            cfg(budget, 2, Backend::Auto),
        )
        .unwrap();
        drain_and_check(&mut r, &streams, &[&data]);
        // Bigger chunks still fit one per stream: accepted with depth 1.
        let streams: Vec<Vec<ChunkPlan>> = (0..3)
            .map(|_| {
                vec![
                    ChunkPlan {
                        file: 0,
                        offset: off,
                        len: max + 8192
                    };
                    2
                ]
            })
            .collect();
        let mut r = Reader::new(
            files(direct),
            streams.clone(),
            cfg(budget, 2, Backend::Auto),
        )
        .unwrap();
        assert_eq!(r.slots.len(), 3);
        drain_and_check(&mut r, &streams, &[&data]);
    }
    assert_eq!(Reader::max_chunk_len(64 * MIB, 4, 2, false), 8 * MIB);
    assert_eq!(Reader::max_chunk_len(64 * MIB, 4, 2, true), 8 * MIB - 4096);
    assert_eq!(Reader::max_chunk_len(4096, 1, 1, true), 0);
}

#[test]
fn open_failure_names_the_file() {
    let dir = scratch();
    let missing = dir.path().join("missing.sst");
    let files = vec![FileSpec {
        path: missing.clone(),
        direct: false,
    }];
    let streams = vec![vec![ChunkPlan {
        file: 0,
        offset: 0,
        len: 10,
    }]];
    match Reader::new(files, streams, cfg(MIB, 2, Backend::Auto)) {
        Err(Error::Io(m)) => assert_eq!(
            m,
            format!(
                "While open a file for random read: {}: No such file or directory",
                missing.display()
            )
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened"),
    }
    let files = vec![FileSpec {
        path: missing,
        direct: false,
    }];
    let streams = vec![vec![ChunkPlan {
        file: 1,
        offset: 0,
        len: 10,
    }]];
    assert!(matches!(
        Reader::new(files, streams, cfg(MIB, 2, Backend::Auto)),
        Err(Error::NotSupported(_))
    ));
}

#[test]
fn empty_streams_zero_length_chunks_and_misuse() {
    let dir = scratch();
    let data = content(10_000, 6);
    let path = write_file(dir.path(), "small.sst", &data);
    for (backend, direct) in [
        (Backend::Auto, false),
        (Backend::Pread, false),
        (Backend::Auto, true),
        (Backend::Pread, true),
    ] {
        let streams = vec![
            vec![],
            vec![
                ChunkPlan {
                    file: 0,
                    offset: 5,
                    len: 0,
                },
                ChunkPlan {
                    file: 0,
                    offset: 5,
                    len: 7,
                },
            ],
        ];
        let files = vec![FileSpec {
            path: path.clone(),
            direct,
        }];
        let mut r = Reader::new(files, streams, cfg(MIB, 1, backend)).unwrap();
        assert!(r.next_chunk(0).unwrap().is_none());
        let c = r.next_chunk(1).unwrap().unwrap();
        assert!(c.bytes().is_empty());
        // Depth 1 and the only buffer still out: an error, not a hang.
        assert!(matches!(r.next_chunk(1), Err(Error::Io(_))));
        r.recycle(c);
        let c = r.next_chunk(1).unwrap().unwrap();
        assert_eq!(c.bytes(), &data[5..12]);
        r.recycle(c);
        assert!(r.next_chunk(1).unwrap().is_none());
        assert!(r.next_chunk(2).is_err());
    }
}

#[test]
fn plain_ring_without_defer_taskrun() {
    uring::set_thread_ring_for_test(true, None);
    let dir = scratch();
    let data = content(6 * MIB, 12);
    let path = write_file(dir.path(), "plain.sst", &data);
    for direct in [false, true] {
        let streams = plans_for(data.len(), 5, 500_000, 13, 0);
        let files = vec![FileSpec {
            path: path.clone(),
            direct,
        }];
        let mut r = Reader::new(files, streams.clone(), cfg(16 * MIB, 3, Backend::Auto)).unwrap();
        assert_eq!(r.ring_flags(), Some("plain"));
        drain_and_check(&mut r, &streams, &[&data]);
    }
    uring::set_thread_ring_for_test(false, None);
}

#[test]
fn unavailable_io_uring_falls_back_to_pread_with_reason() {
    let reason = "io_uring_setup: Operation not permitted (os error 1)";
    uring::set_thread_ring_for_test(false, Some(reason));
    let dir = scratch();
    let data = content(MIB, 14);
    let path = write_file(dir.path(), "fallback.sst", &data);
    for _ in 0..2 {
        let streams = plans_for(data.len(), 2, 100_000, 15, 0);
        let files = vec![FileSpec {
            path: path.clone(),
            direct: false,
        }];
        let mut r = Reader::new(files, streams.clone(), cfg(16 * MIB, 2, Backend::Auto)).unwrap();
        assert_eq!(r.backend_name(), "pread");
        assert_eq!(r.fallback_reason(), Some(reason));
        drain_and_check(&mut r, &streams, &[&data]);
        assert_eq!(r.stats().enter_calls, 0);
    }
    uring::set_thread_ring_for_test(false, None);
}

// ---- Per-thread buffer pool ------------------------------------------------------------------

/// Fixed-length plans: `n` streams of `per` chunks of `len` bytes at `lead` past a block start.
fn fixed_plans(n: usize, per: usize, len: usize, stride: usize, lead: u64) -> Vec<Vec<ChunkPlan>> {
    (0..n)
        .map(|s| {
            (0..per)
                .map(|i| ChunkPlan {
                    file: 0,
                    offset: ((s * per + i) * stride) as u64 + lead,
                    len,
                })
                .collect()
        })
        .collect()
}

/// Bytes of the buffers a Reader holds right now, and its slots' planned total.
fn held(r: &Reader) -> (usize, usize) {
    let bufs = r
        .slots
        .iter()
        .filter_map(|s| s.buf.as_ref())
        .map(|b| b.len());
    (bufs.sum(), r.slots.iter().map(|s| s.size).sum())
}

#[test]
fn size_classes() {
    use pool::{class_floor, class_of, CLASS_STEP};
    assert_eq!(class_of(0), 0);
    assert_eq!(class_of(1), 4096);
    assert_eq!(class_of(4096), 4096);
    assert_eq!(class_of(4097), 8192);
    assert_eq!(class_of(100_000), 128 << 10);
    assert_eq!(class_of(CLASS_STEP), CLASS_STEP);
    assert_eq!(class_of(CLASS_STEP + 1), 2 * CLASS_STEP);
    assert_eq!(class_of(4 * MIB - 12345), 4 * MIB);
    assert_eq!(class_of(usize::MAX - 3), usize::MAX);
    assert_eq!(class_floor(4095), 0);
    assert_eq!(class_floor(5000), 4096);
    assert_eq!(class_floor(3 * MIB + 5), 3 * MIB);
    let mut x = 1usize;
    while x < 1 << 40 {
        for v in [x - 1, x, x + 1, x + x / 3] {
            let c = class_of(v);
            assert!(c >= v && c % 4096 == 0 && class_of(c) == c, "{v} -> {c}");
            let f = class_floor(v);
            assert!(f <= v && class_of(f) == f, "floor {v} -> {f}");
            assert!(class_of(v + 1) >= c, "not monotone at {v}");
        }
        x = x * 3 / 2 + 1;
    }
}

/// Tests that count pooled buffers hold this, so one that changes the process-wide cap
/// (`pool_cap_can_be_lowered_and_zeroed`) cannot run beside them.
static POOL_CAP_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

#[test]
fn pool_reuses_buffers_across_readers_on_one_thread() {
    let _cap = POOL_CAP_LOCK.lock();
    let dir = scratch();
    let data = content(8 * MIB, 21);
    let other = content(8 * MIB, 22);
    let path = write_file(dir.path(), "pool.sst", &data);
    let path2 = write_file(dir.path(), "pool2.sst", &other);
    for direct in [false, true] {
        for backend in [Backend::Auto, Backend::Pread] {
            pool::clear();
            let files = |p: &PathBuf| {
                vec![FileSpec {
                    path: p.clone(),
                    direct,
                }]
            };
            // 4 streams, 3 deep, 200 KB chunks: 12 buffers of the 256 KiB class.
            let streams = fixed_plans(4, 8, 200_000, 200_000, 0);
            let f0 = pool::fresh_allocations();
            let mut r =
                Reader::new(files(&path), streams.clone(), cfg(16 * MIB, 3, backend)).unwrap();
            drain_and_check(&mut r, &streams, &[&data]);
            // io_uring reads ahead into every slot; pread reuses the one buffer a recycled
            // chunk gives back, so it needs one per stream.
            let k = if r.backend_name() == "io_uring" {
                12
            } else {
                4
            };
            assert_eq!(pool::fresh_allocations() - f0, k as u64);
            assert_eq!(held(&r), (k << 18, 12 << 18));
            drop(r);
            assert_eq!(pool::pooled(), (k, k << 18));

            // Different chunk lengths and offsets (odd ones for O_DIRECT slack) in the same
            // class, another file, short reads: nothing new is allocated, and only fresh bytes
            // are ever visible through a Chunk.
            let streams = fixed_plans(4, 8, 230_001, 240_000, 4095);
            let mut c = cfg(16 * MIB, 3, backend);
            c.fault = Some(FaultSpec {
                short_reads: true,
                ..FaultSpec::default()
            });
            let f1 = pool::fresh_allocations();
            let mut r = Reader::new(files(&path2), streams.clone(), c).unwrap();
            drain_and_check(&mut r, &streams, &[&other]);
            assert_eq!(pool::fresh_allocations(), f1, "second Reader allocated");
            assert_eq!(pool::pooled(), (0, 0));
            drop(r);
            assert_eq!(pool::pooled(), (k, k << 18));

            // A read past the end of the file on a pooled (stale) buffer fails, it does not
            // hand out the old bytes.
            let plans = vec![vec![ChunkPlan {
                file: 0,
                offset: (other.len() - 1000) as u64,
                len: 200_000,
            }]];
            let mut r = Reader::new(files(&path2), plans, cfg(16 * MIB, 3, backend)).unwrap();
            match r.next_chunk(0) {
                Err(Error::Corruption(m)) => assert!(m.contains("truncated"), "{m}"),
                other => panic!("{other:?}"),
            }
            drop(r);
            assert_eq!(pool::fresh_allocations(), f1);

            // A chunk the caller keeps is freed by the caller, not pooled by the Reader.
            let streams = fixed_plans(2, 4, 200_000, 200_000, 0);
            let mut r = Reader::new(files(&path), streams, cfg(16 * MIB, 2, backend)).unwrap();
            let kept = r.next_chunk(0).unwrap().unwrap();
            drop(r);
            assert_eq!(pool::pooled(), (k - 1, (k - 1) << 18));
            assert_eq!(pool::fresh_allocations(), f1);
            assert_eq!(kept.bytes(), &data[..200_000]);
            drop(kept);
            assert_eq!(pool::pooled(), (k - 1, (k - 1) << 18));
        }
    }
    pool::clear();
}

#[test]
fn pool_cap_is_respected() {
    use pool::{give, pooled, take, POOL_CAP};
    let _cap = POOL_CAP_LOCK.lock();
    pool::clear();
    let small = take(256 << 10, Memory::Heap).unwrap();
    give(small);
    let bufs: Vec<_> = (0..POOL_CAP / (4 * MIB) + 4)
        .map(|_| take(4 * MIB, Memory::Heap).unwrap())
        .collect();
    for b in bufs {
        give(b);
        assert!(pooled().1 <= POOL_CAP);
    }
    // Full of 4 MiB buffers; the oldest (the small one) was evicted first.
    assert_eq!(pooled(), (POOL_CAP / (4 * MIB), POOL_CAP));
    let f = pool::fresh_allocations();
    drop(take(256 << 10, Memory::Heap).unwrap());
    assert_eq!(pool::fresh_allocations(), f + 1);
    // Larger than the whole cap: freed, and the pool keeps what it has.
    give(AlignedBuf::new(POOL_CAP + (256 << 10)).unwrap());
    assert_eq!(pooled(), (POOL_CAP / (4 * MIB), POOL_CAP));
    // A Reader drop never pushes the pool over the cap either (evicting as it goes).
    let dir = scratch();
    let data = content(4 * MIB, 23);
    let path = write_file(dir.path(), "cap.sst", &data);
    let streams = fixed_plans(4, 4, 250_000, 250_000, 0);
    let files = vec![FileSpec {
        path,
        direct: false,
    }];
    let mut r = Reader::new(files, streams.clone(), cfg(8 * MIB, 2, Backend::Auto)).unwrap();
    drain_and_check(&mut r, &streams, &[&data]);
    // 8 buffers of 256 KiB with io_uring, 4 with pread (one per stream).
    let k = held(&r).0 >> 18;
    assert!(k == 8 || (k == 4 && r.backend_name() == "pread"), "{k}");
    drop(r);
    // They evicted one 4 MiB buffer (the oldest) to make room.
    let (n, bytes) = pooled();
    assert!(bytes <= POOL_CAP);
    assert_eq!(bytes, POOL_CAP - 4 * MIB + k * (256 << 10));
    assert_eq!(n, POOL_CAP / (4 * MIB) - 1 + k);
    pool::clear();
}

#[test]
fn pool_is_per_thread() {
    let _cap = POOL_CAP_LOCK.lock();
    let dir = scratch();
    let data = content(4 * MIB, 24);
    let path = write_file(dir.path(), "thread.sst", &data);
    let streams = fixed_plans(3, 4, 300_000, 300_000, 0);
    let run = {
        let path = path.clone();
        let streams = streams.clone();
        let data = data.clone();
        move || {
            let files = vec![FileSpec {
                path: path.clone(),
                direct: false,
            }];
            let mut r =
                Reader::new(files, streams.clone(), cfg(16 * MIB, 2, Backend::Auto)).unwrap();
            drain_and_check(&mut r, &streams, &[&data]);
            // Buffers used: 6 with io_uring, 3 with pread (one per stream).
            held(&r).0 >> 19
        }
    };
    pool::clear();
    let k = run();
    assert!(k == 6 || k == 3, "{k}");
    // The buffers (512 KiB class) stay with this thread.
    assert_eq!(pool::pooled(), (k, k << 19));
    let f = pool::fresh_allocations();
    let (fresh, before, after, k2) = std::thread::spawn({
        let run = run.clone();
        move || {
            let before = pool::pooled();
            let f0 = pool::fresh_allocations();
            let k = run();
            (pool::fresh_allocations() - f0, before, pool::pooled(), k)
        }
    })
    .join()
    .unwrap();
    assert_eq!(before, (0, 0), "a new thread starts with an empty pool");
    assert_eq!(k2, k);
    assert_eq!(
        fresh, k as u64,
        "the other thread allocated its own buffers"
    );
    assert_eq!(after, (k, k << 19));
    // This thread's pool is untouched, and still serves the next Reader here.
    assert_eq!(pool::pooled(), (k, k << 19));
    assert_eq!(run(), k);
    assert_eq!(pool::fresh_allocations(), f);
    pool::clear();
}

#[test]
fn budget_counts_rounded_buffers() {
    let dir = scratch();
    let data = content(16 * MIB, 25);
    let path = write_file(dir.path(), "rounded.sst", &data);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as usize
    };
    for round in 0..24 {
        let direct = round % 2 == 1;
        // Up to 13 MiB: even one stream one deep plans inside the 16 MiB file.
        let budget = MIB + next() % (12 * MIB);
        let n = 1 + next() % 9;
        let depth = 1 + next() % 3;
        let max = Reader::max_chunk_len(budget, n, depth, direct);
        if max == 0 {
            continue;
        }
        // Worst offsets and lengths at the limit: accepted at full depth, within the budget.
        let lead = if direct { 4095 } else { 1 };
        let streams: Vec<Vec<ChunkPlan>> = (0..n)
            .map(|s| {
                (0..depth + 1)
                    .map(|i| ChunkPlan {
                        file: 0,
                        offset: (((s + i) * max) % (data.len() - max - 8192)) as u64 / 4096 * 4096
                            + lead,
                        len: max,
                    })
                    .collect()
            })
            .collect();
        let files = vec![FileSpec {
            path: path.clone(),
            direct,
        }];
        let mut r = Reader::new(files, streams.clone(), cfg(budget, depth, Backend::Auto))
            .unwrap_or_else(|e| panic!("budget {budget} n {n} depth {depth} max {max}: {e}"));
        assert_eq!(r.slots.len(), n * depth, "depth lowered");
        drain_and_check(&mut r, &streams, &[&data]);
        let (bytes, planned) = held(&r);
        assert!(planned <= budget, "{planned} > {budget}");
        assert!(bytes <= budget, "{bytes} > {budget}");
        // A bigger budget-filling mix: depth is lowered rather than going over.
        let streams: Vec<Vec<ChunkPlan>> = (0..n)
            .map(|s| {
                vec![
                    ChunkPlan {
                        file: 0,
                        offset: (s * 4096) as u64 + lead,
                        len: max + 1 + next() % 8192,
                    };
                    depth + 1
                ]
            })
            .collect();
        let files = vec![FileSpec {
            path: path.clone(),
            direct,
        }];
        if let Ok(mut r) = Reader::new(files, streams.clone(), cfg(budget, depth, Backend::Auto)) {
            drain_and_check(&mut r, &streams, &[&data]);
            let (bytes, planned) = held(&r);
            assert!(
                planned <= budget && bytes <= budget,
                "{planned}/{bytes} > {budget}"
            );
        }
    }
    pool::clear();
}

#[test]
fn throttle_is_asked_for_every_read_before_it_goes_out() {
    // The DB's read rate limit (RateLimiter::RequestToken through the bridge): every read, a
    // continuation of a short read included, is announced with its length first. Under a limit
    // the reader starts one read per stream, so the merge can begin once those are in.
    let dir = scratch();
    let data = content(6 * MIB + 777, 5);
    let path = write_file(dir.path(), "limited.sst", &data);
    for direct in [false, true] {
        for backend in [Backend::Auto, Backend::Pread] {
            for short_reads in [false, true] {
                let asked = Arc::new(parking_lot::Mutex::new((0u64, 0u64)));
                let seen = Arc::clone(&asked);
                let streams = plans_for(data.len(), 4, 700_000, 3, 0);
                let files = vec![FileSpec {
                    path: path.clone(),
                    direct,
                }];
                let mut c = cfg(16 * MIB, 3, backend);
                c.fault = Some(FaultSpec {
                    short_reads,
                    ..FaultSpec::default()
                });
                c.throttle = Some(ReadThrottle::new(move |bytes| {
                    let mut a = seen.lock();
                    a.0 += 1;
                    a.1 += bytes;
                }));
                let mut r = Reader::new(files, streams.clone(), c).unwrap();
                let at_open = asked.lock().0;
                if r.backend_name() == "io_uring" {
                    // (With short reads, the first reads' continuations go out at open too.)
                    if !short_reads {
                        assert_eq!(at_open, streams.len() as u64, "one read per stream at open");
                    }
                } else {
                    assert_eq!(at_open, 0, "pread reads when a chunk is asked for");
                }
                drain_and_check(&mut r, &streams, &[&data]);
                let st = r.stats();
                let (calls, bytes) = *asked.lock();
                let what = format!("direct {direct}, {backend:?}, short reads {short_reads}");
                assert_eq!(calls, st.reads_submitted, "{what}");
                // Each piece asks for what it reads (the short-read fault shortens the ask
                // itself; a continuation asks for the rest). Only an O_DIRECT read that ends in
                // the file's last, partial page gets less than its aligned ask.
                assert!(
                    bytes >= st.bytes_read && bytes - st.bytes_read < ALIGN as u64,
                    "{what}: asked {bytes}, {st:?}"
                );
                assert!(
                    direct || bytes == st.bytes_read,
                    "{what}: asked {bytes}, {st:?}"
                );
                assert!(!short_reads || st.short_reads > 0, "{what}: {st:?}");
            }
        }
    }
}

#[test]
fn accounting_hears_of_every_finished_read() {
    // RocksDB's read accounting (statistics, per-level latency, listeners' OnFileReadFinish and
    // OnIOError): every read that finished is reported once, with the bytes it returned, where
    // it started, when and for how long; a failed read with its errno.
    let dir = scratch();
    let data = content(5 * MIB + 333, 7);
    let path = write_file(dir.path(), "accounted.sst", &data);
    for direct in [false, true] {
        for backend in [Backend::Auto, Backend::Pread] {
            for short_reads in [false, true] {
                let heard = Arc::new(parking_lot::Mutex::new(Vec::<ReadDone>::new()));
                let sink = Arc::clone(&heard);
                let streams = plans_for(data.len(), 3, 600_000, 4, 0);
                let files = vec![FileSpec {
                    path: path.clone(),
                    direct,
                }];
                let mut c = cfg(16 * MIB, 3, backend);
                c.fault = Some(FaultSpec {
                    short_reads,
                    ..FaultSpec::default()
                });
                c.accounting = Some(ReadAccounting::new(move |d| sink.lock().push(*d)));
                let before = SystemTime::now();
                let mut r = Reader::new(files, streams.clone(), c).unwrap();
                drain_and_check(&mut r, &streams, &[&data]);
                let st = r.stats();
                let heard = heard.lock();
                let what = format!("direct {direct}, {backend:?}, short reads {short_reads}");
                assert_eq!(heard.len() as u64, st.reads_submitted, "{what}");
                let bytes: usize = heard.iter().map(|d| d.len).sum();
                assert_eq!(bytes as u64, st.bytes_read, "{what}");
                for d in heard.iter() {
                    assert_eq!((d.file, d.errno), (0, None), "{what}: {d:?}");
                    assert!(d.offset as usize + d.len <= data.len(), "{what}: {d:?}");
                    assert!(!direct || d.offset % ALIGN as u64 == 0, "{what}: {d:?}");
                    assert!(d.start >= before && d.start <= SystemTime::now(), "{what}");
                }
            }
        }
    }
    // A failed read is reported with its errno and no bytes.
    for backend in [Backend::Auto, Backend::Pread] {
        let heard = Arc::new(parking_lot::Mutex::new(Vec::<ReadDone>::new()));
        let sink = Arc::clone(&heard);
        let streams = plans_for(data.len(), 1, 600_000, 5, 0);
        let files = vec![FileSpec {
            path: path.clone(),
            direct: false,
        }];
        let mut c = cfg(16 * MIB, 2, backend);
        c.fault = Some(FaultSpec {
            eio_path_contains: Some("accounted.sst".into()),
            ..FaultSpec::default()
        });
        c.accounting = Some(ReadAccounting::new(move |d| sink.lock().push(*d)));
        let mut r = Reader::new(files, streams, c).unwrap();
        assert!(r.next_chunk(0).is_err());
        let heard = heard.lock();
        assert!(
            heard
                .iter()
                .any(|d| d.errno == Some(libc::EIO) && d.len == 0),
            "{backend:?}: {heard:?}"
        );
    }
}

#[test]
fn pool_cap_can_be_lowered_and_zeroed() {
    // RINGMERGE_POOL_CAP: an operator with many compaction threads lowers what each keeps idle
    // (0: nothing). A lowered cap also empties a pool that is over it at the next give-back.
    use pool::{give, pooled, set_cap, take, POOL_CAP};
    let _cap = POOL_CAP_LOCK.lock();
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            set_cap(POOL_CAP);
        }
    }
    let _restore = Restore;
    std::thread::spawn(|| {
        let bufs: Vec<_> = (0..3)
            .map(|_| take(4 * MIB, Memory::Heap).unwrap())
            .collect();
        set_cap(8 * MIB);
        for b in bufs {
            give(b);
        }
        assert_eq!(pooled(), (2, 8 * MIB), "two 4 MiB buffers fit 8 MiB");
        set_cap(0);
        give(take(MIB, Memory::Heap).unwrap());
        assert_eq!(pooled(), (0, 0), "cap 0 keeps nothing");
        set_cap(POOL_CAP);
        give(take(MIB, Memory::Heap).unwrap());
        assert_eq!(pooled(), (1, MIB));
    })
    .join()
    .unwrap();
}

// ---- Fault injection settings -----------------------------------------------------------------

#[test]
fn fault_spec_parses_the_environment_grammar() {
    let parse = |eio, short| {
        FaultSpec::parse(eio, short)
            .map(|f| (f.eio_path_contains, f.eio_from_offset, f.short_reads))
    };
    assert_eq!(parse(None, None), None);
    assert_eq!(
        parse(Some(""), Some("0")),
        None,
        "empty EIO, short reads not 1"
    );
    assert_eq!(
        parse(Some("x.sst"), None),
        Some((Some("x.sst".into()), 0, false))
    );
    assert_eq!(
        parse(Some("x.sst@4096"), None),
        Some((Some("x.sst".into()), 4096, false))
    );
    assert_eq!(
        parse(Some("x.sst@later"), None),
        Some((Some("x.sst".into()), 0, false)),
        "an offset that is not a number is 0"
    );
    assert_eq!(parse(None, Some("1")), Some((None, 0, true)));
    assert_eq!(
        parse(Some("@8"), Some("1")),
        Some((Some(String::new()), 8, true)),
        "an empty substring before @ matches every file, as before"
    );
}

#[test]
fn default_config_injects_no_faults() {
    assert!(ReaderConfig::default().fault.is_none());
}

// ---- Oversized plans --------------------------------------------------------------------------

/// `n` streams over `[0, size)`: regular plans of up to `max` bytes, with every `every`-th plan
/// replaced by an oversized one whose length cycles through `big` (two of them back to back now
/// and then). Offsets are left unaligned, so O_DIRECT spans need their alignment slack.
fn plans_with_oversized(
    size: usize,
    n: usize,
    max: usize,
    every: usize,
    big: &[usize],
) -> Vec<Vec<ChunkPlan>> {
    let mut x = 0x51ed_270b_27a4_31c9u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as usize
    };
    let per = size / n;
    let mut k = 0;
    (0..n)
        .map(|s| {
            let (start, end) = (s * per, if s + 1 == n { size } else { (s + 1) * per });
            let mut plans = Vec::new();
            let mut off = start + 1 + next() % 4000;
            while off < end {
                let i = plans.len();
                let len = if i % every == every - 1 || (i % (3 * every) == every && i > 0) {
                    k += 1;
                    big[k % big.len()]
                } else {
                    1 + next() % max
                };
                let len = len.min(end - off);
                plans.push(ChunkPlan {
                    file: 0,
                    offset: off as u64,
                    len,
                });
                off += len + next() % 3;
            }
            plans
        })
        .collect()
}

/// Bytes of the regular buffers a Reader holds (set aside or in place), which the budget bounds.
fn regular_bytes(r: &Reader) -> usize {
    r.slots
        .iter()
        .filter_map(|s| {
            if s.dedicated {
                s.aside.as_ref()
            } else {
                s.buf.as_ref()
            }
        })
        .map(AlignedBuf::len)
        .sum()
}

/// The memory bound the module docs state for oversized plans: per stream, its depth times its
/// largest oversized span.
fn oversized_bound(r: &Reader, streams: &[Vec<ChunkPlan>], above: usize, direct: bool) -> u64 {
    streams
        .iter()
        .enumerate()
        .map(|(s, plans)| {
            let largest = plans
                .iter()
                .filter(|p| p.len > above)
                .map(|p| slot::span_of(p, direct))
                .max()
                .unwrap_or(0);
            (r.depth_of(s) * largest) as u64
        })
        .sum()
}

#[test]
fn oversized_plans_get_buffers_of_their_own_both_backends_buffered_and_direct() {
    let _cap = POOL_CAP_LOCK.lock();
    let dir = scratch();
    let data = content(40 * MIB, 31);
    let path = write_file(dir.path(), "oversized.sst", &data);
    // Regular plans up to 200 KB in 256 KiB buffers, 3 streams 2 deep: 1.5 MiB of a 2 MiB
    // budget. The oversized plans (1.1 to 5 MiB) could not have one buffer per stream in it.
    let (budget, above) = (2 * MIB, 256 << 10);
    let big = [3 * MIB + 17, 5 * MIB, MIB + 100_000, 4 * MIB - 1];
    let streams = plans_with_oversized(data.len(), 3, 200_000, 5, &big);
    let oversized: usize = streams.iter().flatten().filter(|p| p.len > above).count();
    assert!(oversized >= 6, "{oversized}");
    for direct in [false, true] {
        for backend in [Backend::Auto, Backend::Pread] {
            for short_reads in [false, true] {
                let files = vec![FileSpec {
                    path: path.clone(),
                    direct,
                }];
                let mut c = cfg(budget, 2, backend);
                c.oversized_above = above;
                if short_reads {
                    c.fault = Some(FaultSpec {
                        short_reads: true,
                        ..FaultSpec::default()
                    });
                }
                let mut r = Reader::new(files, streams.clone(), c).unwrap();
                let what = format!("direct {direct} {} short {short_reads}", r.backend_name());
                assert_eq!(r.slots.len(), 6, "{what}: depth kept");
                assert!(r.slots.iter().all(|s| s.size == 256 << 10), "{what}");
                drain_and_check(&mut r, &streams, &[&data]);
                let st = r.stats();
                assert_eq!(st.oversized_reads, oversized as u64, "{what}");
                if short_reads {
                    assert!(st.short_reads > 0, "{what}");
                }
                // Regular buffers stay within the budget; the oversized ones within the bound
                // the module docs give (chunks recycled at once: at most two per stream).
                assert!(regular_bytes(&r) <= budget, "{what}");
                let largest = streams
                    .iter()
                    .flatten()
                    .map(|p| slot::span_of(p, direct))
                    .max()
                    .unwrap() as u64;
                assert!(st.oversized_peak_bytes >= largest, "{what}: {st:?}");
                assert!(
                    st.oversized_peak_bytes <= oversized_bound(&r, &streams, above, direct),
                    "{what}: {st:?}"
                );
                assert_eq!(r.oversized_live, 0, "{what}: every dedicated buffer freed");
                // Dedicated buffers are freed, never pooled.
                pool::clear();
                drop(r);
                let (_, pooled) = pool::pooled();
                assert!(pooled <= 6 * (256 << 10), "{what}: {pooled} bytes pooled");
            }
        }
    }
    pool::clear();
}

#[test]
fn oversized_plan_is_not_read_ahead_and_held_chunks_cannot_stall_it() {
    let dir = scratch();
    let data = content(16 * MIB, 32);
    let path = write_file(dir.path(), "held.sst", &data);
    let at = |offset: usize, len: usize| ChunkPlan {
        file: 0,
        offset: offset as u64,
        len,
    };
    // Regular, two oversized back to back, regular, oversized, regular.
    let plans = vec![
        at(100, 50_000),
        at(50_100, 3 * MIB),
        at(50_100 + 3 * MIB, 2 * MIB),
        at(60_000 + 5 * MIB, 60_000),
        at(8 * MIB + 3, 4 * MIB),
        at(13 * MIB, 1000),
    ];
    let want = |c: &Chunk| &data[c.plan.offset as usize..][..c.plan.len];
    for direct in [false, true] {
        for backend in [Backend::Auto, Backend::Pread] {
            let files = vec![FileSpec {
                path: path.clone(),
                direct,
            }];
            let mut c = cfg(MIB, 3, backend);
            c.oversized_above = 64 << 10;
            let mut r = Reader::new(files, vec![plans.clone()], c).unwrap();
            let what = format!("direct {direct} {}", r.backend_name());
            assert_eq!(r.depth_of(0), 3);
            // Only the first plan is read ahead: the oversized one behind it waits until it is
            // the stream's next chunk.
            assert_eq!(r.stats().oversized_reads, 0, "{what}");
            let c0 = r.next_chunk(0).unwrap().unwrap();
            assert_eq!(c0.bytes(), want(&c0));
            // The merge holds every chunk it got (pinned values): the oversized ones are still
            // read, each in a slot of its own, until the depth is used up.
            let c1 = r.next_chunk(0).unwrap().unwrap();
            assert_eq!(c1.bytes(), want(&c1), "{what}");
            let c2 = r.next_chunk(0).unwrap().unwrap();
            assert_eq!(c2.bytes(), want(&c2), "{what}");
            let st = r.stats();
            assert_eq!(st.oversized_reads, 2, "{what}");
            assert_eq!(st.oversized_peak_bytes as usize, r.oversized_live, "{what}");
            assert!(r.oversized_live >= 5 * MIB, "{what}");
            // All three slots are lent: one more needs one back, as for regular chunks.
            assert!(r.next_chunk(0).is_err(), "{what}");
            r.recycle(c1);
            assert!(r.oversized_live < 3 * MIB, "{what}: freed on recycle");
            let c3 = r.next_chunk(0).unwrap().unwrap();
            assert_eq!(c3.bytes(), want(&c3), "{what}");
            r.recycle(c0);
            r.recycle(c2);
            // The slot that held an oversized chunk has its regular buffer back; only the next
            // oversized plan (issued by that recycle on io_uring, now that it is the stream's
            // next chunk) has a buffer of its own.
            let dedicated = r.slots.iter().filter(|s| s.dedicated).count();
            let next_issued = usize::from(r.backend_name() == "io_uring");
            assert_eq!(dedicated, next_issued, "{what}");
            assert!(r.oversized_live <= next_issued * (4 * MIB + 4096), "{what}");
            let c4 = r.next_chunk(0).unwrap().unwrap();
            assert_eq!(c4.bytes(), want(&c4), "{what}");
            r.recycle(c3);
            // Dropped with the last oversized chunk out and the rest possibly in flight.
            drop(r);
            assert_eq!(c4.bytes(), want(&c4), "{what}");
        }
    }
}

#[test]
fn failed_oversized_read_frees_its_buffer() {
    let dir = scratch();
    let data = content(8 * MIB, 33);
    let path = write_file(dir.path(), "fail.sst", &data);
    for backend in [Backend::Auto, Backend::Pread] {
        for direct in [false, true] {
            let plans = vec![
                ChunkPlan {
                    file: 0,
                    offset: 10,
                    len: 30_000,
                },
                ChunkPlan {
                    file: 0,
                    offset: MIB as u64 + 7,
                    len: 3 * MIB,
                },
            ];
            let files = vec![FileSpec {
                path: path.clone(),
                direct,
            }];
            let mut c = cfg(MIB, 2, backend);
            c.oversized_above = 64 << 10;
            c.fault = Some(FaultSpec {
                eio_path_contains: Some("fail.sst".into()),
                eio_from_offset: MIB as u64,
                ..FaultSpec::default()
            });
            let mut r = Reader::new(files, vec![plans], c).unwrap();
            let first = r.next_chunk(0).unwrap().unwrap();
            assert_eq!(first.bytes(), &data[10..30_010]);
            let err = r.next_chunk(0).unwrap_err();
            assert!(
                matches!(&err, Error::Io(m) if m.contains("Input/output error")),
                "{err:?}"
            );
            assert_eq!(r.stats().oversized_reads, 1);
            assert_eq!(r.oversized_live, 0, "the failed read's buffer is freed");
            assert!(r.slots.iter().all(|s| !s.dedicated));
            assert_eq!(r.next_chunk(0).unwrap_err(), err, "sticky");
            r.recycle(first);
        }
    }
}

#[test]
fn a_stream_of_only_oversized_plans_takes_nothing_from_the_budget() {
    let dir = scratch();
    let data = content(12 * MIB, 34);
    let path = write_file(dir.path(), "only.sst", &data);
    let streams = vec![
        vec![
            ChunkPlan {
                file: 0,
                offset: 0,
                len: 5 * MIB,
            },
            ChunkPlan {
                file: 0,
                offset: 5 * MIB as u64,
                len: 6 * MIB,
            },
        ],
        plans_for(MIB, 1, 100_000, 5, 0).remove(0),
    ];
    for backend in [Backend::Auto, Backend::Pread] {
        let files = vec![FileSpec {
            path: path.clone(),
            direct: true,
        }];
        // The second stream's regular buffers fit the 1 MiB budget; the first stream's 5 and
        // 6 MiB chunks would not fit it even once.
        let mut c = cfg(MIB, 2, backend);
        c.oversized_above = 128 << 10;
        let mut r = Reader::new(files, streams.clone(), c).unwrap();
        assert_eq!(
            r.slots[0].size, 0,
            "no regular buffer for a stream of oversized plans"
        );
        drain_and_check(&mut r, &streams, &[&data]);
        assert_eq!(r.stats().oversized_reads, 2);
        assert!(regular_bytes(&r) <= MIB);
        // Without the threshold the same plans are refused, as before.
        let files = vec![FileSpec {
            path: path.clone(),
            direct: true,
        }];
        assert!(matches!(
            Reader::new(files, streams.clone(), cfg(MIB, 2, backend)),
            Err(Error::NotSupported(_))
        ));
    }
}

#[test]
fn detached_oversized_chunk_keeps_its_bytes_and_gives_its_read_back() {
    let dir = scratch();
    let data = content(24 * MIB, 35);
    let path = write_file(dir.path(), "detach.sst", &data);
    // Two oversized plans, then regular ones: held oversized chunks must not use up the depth.
    let mut plans = vec![
        ChunkPlan {
            file: 0,
            offset: 3,
            len: 5 * MIB,
        },
        ChunkPlan {
            file: 0,
            offset: 5 * MIB as u64 + 3,
            len: 4 * MIB,
        },
    ];
    plans.extend((0..8).map(|i| ChunkPlan {
        file: 0,
        offset: (10 * MIB + i * 100_000) as u64,
        len: 90_000,
    }));
    for direct in [false, true] {
        for backend in [Backend::Auto, Backend::Pread] {
            let files = vec![FileSpec {
                path: path.clone(),
                direct,
            }];
            let mut c = cfg(MIB, 2, backend);
            c.oversized_above = 128 << 10;
            let mut r = Reader::new(files, vec![plans.clone()], c).unwrap();
            let what = format!("direct {direct} {}", r.backend_name());
            let mut kept = Vec::new();
            let mut regular = Vec::new();
            while let Some(mut chunk) = r.next_chunk(0).unwrap() {
                let want = &data[chunk.plan.offset as usize..][..chunk.plan.len];
                assert_eq!(chunk.bytes(), want, "{what}");
                if chunk.plan.len > 128 << 10 {
                    // Kept, as the merge keeps a chunk its values are pinned in, but without
                    // its read: the stream goes on 2 deep.
                    assert!(r.detach(&mut chunk), "{what}");
                    assert!(!chunk.holds_a_read() && !r.detach(&mut chunk), "{what}");
                    kept.push(chunk);
                } else {
                    // A regular chunk cannot be detached: its buffer is the slot's.
                    assert!(!r.detach(&mut chunk) && chunk.holds_a_read(), "{what}");
                    regular.push(chunk);
                    if regular.len() == 2 {
                        // Both reads lent out (regular), two oversized chunks kept: one more
                        // (unless the stream is done) needs a regular one back, not the kept
                        // ones.
                        if Some(&regular[1].plan) != plans.last() {
                            assert!(r.next_chunk(0).is_err(), "{what}");
                        }
                        for c in regular.drain(..) {
                            r.recycle(c);
                        }
                    }
                }
            }
            for c in regular.drain(..) {
                r.recycle(c);
            }
            assert_eq!(kept.len(), 2, "{what}");
            assert!(r.oversized_live >= 9 * MIB, "{what}");
            for c in &kept {
                assert_eq!(
                    c.bytes(),
                    &data[c.plan.offset as usize..][..c.plan.len],
                    "{what}"
                );
            }
            for c in kept {
                r.recycle(c);
            }
            assert_eq!(r.oversized_live, 0, "{what}: freed on recycle");
            assert!(regular_bytes(&r) <= MIB, "{what}");
            assert!(r.slots.iter().all(|s| !s.dedicated), "{what}");
        }
    }
}
