//! The steps of [`Reader::new`](super::Reader::new): size the buffers, fit the read depth to
//! the memory budget, open the files, lay out the streams' slots and choose the backend. All
//! the validation happens before a file is opened or the ring is taken.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;

use super::slot::{span_of, Slot};
use super::{
    errno_text, oversized, pool, uring, Backend, ChunkPlan, Engine, FaultSpec, FileSpec, OpenFile,
    Stream,
};
use crate::error::{Error, Result};

impl OpenFile {
    /// Opens `spec` (O_DIRECT when asked); `fault` says whether its reads are to fail.
    pub(super) fn open(spec: FileSpec, fault: &FaultSpec) -> Result<OpenFile> {
        let mut opts = OpenOptions::new();
        opts.read(true);
        if spec.direct {
            opts.custom_flags(libc::O_DIRECT);
        }
        let path = spec.path.display().to_string();
        let file = opts.open(&spec.path).map_err(|e| {
            Error::io(format!(
                "While open a file for random read: {path}: {}",
                errno_text(&e)
            ))
        })?;
        let fault_eio_from = fault
            .eio_path_contains
            .as_deref()
            .is_some_and(|needle| path.contains(needle))
            .then_some(fault.eio_from_offset);
        Ok(OpenFile {
            file,
            path,
            direct: spec.direct,
            fault_eio_from,
        })
    }
}

/// Each stream's buffer size: the size class (see `pool`) of its largest regular span, so buffers
/// can be pooled across Readers and the budget is charged with what is really allocated.
/// Oversized plans (longer than `oversized_above`, when it is not 0) do not count: they get a
/// buffer of their own (see the module docs of `reader`). Err when a plan names a file that is
/// not in `files`.
pub(super) fn buffer_classes(
    files: &[FileSpec],
    streams: &[Vec<ChunkPlan>],
    oversized_above: usize,
) -> Result<Vec<usize>> {
    let mut buf_sizes = Vec::with_capacity(streams.len());
    for (s, plans) in streams.iter().enumerate() {
        let mut size = 0usize;
        for p in plans {
            let Some(f) = files.get(p.file) else {
                return Err(Error::not_supported(format!(
                    "reader: stream {s} plans a read of file {} but only {} files were given",
                    p.file,
                    files.len()
                )));
            };
            if !oversized(p, oversized_above) {
                size = size.max(span_of(p, f.direct));
            }
        }
        buf_sizes.push(pool::class_of(size));
    }
    Ok(buf_sizes)
}

/// The read depth per stream: `wanted` (at least 1), lowered until every stream's buffers fit
/// `budget`. Err when even one buffer per stream does not.
pub(super) fn fit_depth(
    streams: &[Vec<ChunkPlan>],
    buf_sizes: &[usize],
    wanted: usize,
    budget: usize,
) -> Result<usize> {
    let total_for = |d: usize| -> usize {
        streams
            .iter()
            .zip(buf_sizes)
            .fold(0usize, |acc, (plans, &size)| {
                acc.saturating_add(size.saturating_mul(d.min(plans.len())))
            })
    };
    let mut depth = wanted.max(1);
    while depth > 1 && total_for(depth) > budget {
        depth -= 1;
    }
    if total_for(depth) > budget {
        let largest = buf_sizes.iter().copied().max().unwrap_or(0);
        return Err(Error::not_supported(format!(
            "reader: {} streams need {} bytes of buffers with one read each, over the memory \
             budget of {budget} bytes (largest buffer {largest} bytes; Reader::max_chunk_len \
             gives the limit)",
            streams.len(),
            total_for(1)
        )));
    }
    if depth < wanted {
        log::debug!(
            "ringmerge reader: depth lowered from {wanted} to {depth} to fit {budget} bytes"
        );
    }
    Ok(depth)
}

/// The streams and their slots: `depth` per stream (fewer for a stream with fewer plans), each
/// of its stream's buffer size, all free.
pub(super) fn lay_out_slots(
    streams: Vec<Vec<ChunkPlan>>,
    buf_sizes: Vec<usize>,
    depth: usize,
) -> (Vec<Stream>, Vec<Slot>) {
    let mut slots = Vec::new();
    let mut stream_states = Vec::with_capacity(streams.len());
    for (s, (plans, size)) in streams.into_iter().zip(buf_sizes).enumerate() {
        let nslots = depth.min(plans.len());
        let first = slots.len();
        slots.extend((0..nslots).map(|_| Slot::new(s, size)));
        stream_states.push(Stream {
            plans,
            next_issue: 0,
            order: VecDeque::with_capacity(nslots),
            // Reversed so that pop() hands out the lowest slot first.
            free: (first..first + nslots).rev().collect(),
            nslots,
            failed: None,
        });
    }
    (stream_states, slots)
}

/// The backend for a Reader with `nslots` buffers, and why io_uring was not used when it could
/// not be. The other arguments are `ReaderConfig`'s.
///
/// `RINGMERGE_IO=pread` reaches here as `Backend::Pread` (config.rs reads it): the reader
/// itself reads no environment, so `Backend::Auto` always tries io_uring.
pub(super) fn choose_engine(
    backend: Backend,
    nslots: usize,
    max_inflight_bytes: usize,
    io_priority: u16,
) -> (Engine, Option<String>) {
    if backend == Backend::Pread {
        return (Engine::Pread, None);
    }
    match uring::Ring::acquire() {
        Ok(ring) => {
            let u = uring::Uring::new(ring, nslots, max_inflight_bytes, io_priority);
            (Engine::Uring(u), None)
        }
        Err(reason) => (Engine::Pread, Some(reason)),
    }
}
