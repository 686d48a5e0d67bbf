//! The BPF merge backend (`RINGMERGE_MODE=bpf`): loading the program once per process, its arena,
//! and running it.
//!
//! `bpf/merge.bpf.c` is compiled by build.rs into a libbpf-cargo skeleton that embeds the object.
//! [`engine`] loads it on first use and keeps it for the life of the process, shared by every
//! compaction thread (each compaction has its own state in the arena, see [`session`]). When it
//! cannot be loaded (kernel < 6.9 without arenas, no CAP_BPF + CAP_PERFMON, a verifier rejection),
//! the reason is kept and every compaction that asked for BPF merges natively and reports it.

pub mod abi;
mod region;
pub mod session;

mod skel {
    #![allow(clippy::all, clippy::pedantic, missing_docs, unused_imports)]
    include!(concat!(env!("OUT_DIR"), "/merge.skel.rs"));
}

use crate::reader::arena::{self, Arena};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{AsRawLibbpf, MapCore, OpenObject};
use parking_lot::Mutex;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::OnceLock;

/// Which selection the program uses: a linear scan or a binary heap over the runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    Linear,
    Heap,
}

/// The loaded program: its two entry points and the arena they share.
pub struct BpfEngine {
    skel: ManuallyDrop<skel::MergeSkel<'static>>,
    /// Storage the skeleton borrows; freed after it in `Drop`.
    storage: *mut MaybeUninit<OpenObject>,
    linear_fd: i32,
    heap_fd: i32,
    arena: Arena,
}

// SAFETY: after `load` the engine is only used through file descriptors (test_run and info
// queries are syscalls the kernel serialises as needed) and the arena allocator, which locks.
// No libbpf object state is read or changed after loading until `Drop`, which has `&mut self`.
unsafe impl Send for BpfEngine {}
// SAFETY: see `Send`: shared use never touches libbpf's object, only fds and the locked arena.
unsafe impl Sync for BpfEngine {}

/// libbpf's messages while loading (the verifier log on a rejection), for the fallback reason.
static LIBBPF_LOG: Mutex<String> = Mutex::new(String::new());

fn capture_libbpf(level: libbpf_rs::PrintLevel, msg: String) {
    if level == libbpf_rs::PrintLevel::Debug {
        return;
    }
    let mut log = LIBBPF_LOG.lock();
    // Keep the tail: the verifier's verdict comes last.
    if log.len() > 16 << 10 {
        let cut = log.len() - (8 << 10);
        let cut = (cut..log.len())
            .find(|&i| log.is_char_boundary(i))
            .unwrap_or(log.len());
        log.drain(..cut);
    }
    log.push_str(&msg);
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Whether the kernel lets this process create a BPF arena, asked directly with one
/// `BPF_MAP_CREATE` of a one-page arena: no skeleton, no program, so the answer is the kernel's
/// and not our loader's. Some kernels refuse arenas even to a process with CAP_BPF + CAP_PERFMON
/// (seen: a 6.18 VM kernel in lockdown integrity mode answers EPERM while every other map type
/// loads); the loader's error then says so, and the tests that need the program record why they
/// did not run (`test_support::skip_without_bpf_arena`).
pub fn kernel_allows_arena() -> Result<(), String> {
    // SAFETY: an all-zero `bpf_map_create_opts` is its documented default; `sz` is set to the
    // struct's size as libbpf's OPTS convention requires.
    let mut opts: libbpf_sys::bpf_map_create_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _;
    opts.map_flags = libbpf_sys::BPF_F_MMAPABLE;
    // SAFETY: a null name is allowed; key and value sizes are 0 as arenas require; `opts` lives
    // across the call.
    let fd = unsafe {
        libbpf_sys::bpf_map_create(
            libbpf_sys::BPF_MAP_TYPE_ARENA,
            std::ptr::null(),
            0,
            0,
            1,
            &opts,
        )
    };
    if fd < 0 {
        return Err(format!(
            "BPF_MAP_CREATE of a one-page arena: {} (kernel {})",
            std::io::Error::from_raw_os_error(-fd),
            kernel_release()
        ));
    }
    // SAFETY: `fd` is the map's descriptor, just returned to us and owned by nothing else.
    unsafe { libc::close(fd) };
    Ok(())
}

impl BpfEngine {
    /// Opens, verifies and loads the program, and maps its arena. The error says why in words
    /// an operator can act on (kernel version, capabilities, verifier output).
    pub fn load() -> Result<BpfEngine, String> {
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Warn, capture_libbpf)));
        LIBBPF_LOG.lock().clear();
        let storage: *mut MaybeUninit<OpenObject> = Box::into_raw(Box::new(MaybeUninit::uninit()));
        let fail = |what: &str, e: libbpf_rs::Error| {
            let log = LIBBPF_LOG.lock();
            let detail = log
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .trim_start_matches("libbpf: ")
                .to_owned();
            format!(
                "{what}: {e} (kernel {}; needs Linux >= 6.9 with BPF arenas and CAP_BPF + \
                 CAP_PERFMON){}",
                kernel_release(),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!("; libbpf: {detail}")
                }
            ) + &match kernel_allows_arena() {
                Ok(()) => String::new(),
                Err(why) => format!("; the kernel refuses BPF arenas to this process: {why}"),
            }
        };
        // SAFETY: `storage` is a fresh, exclusively owned allocation that lives until this
        // engine's Drop frees it after the skeleton (or until the error paths below free it);
        // the 'static borrow never outlives it because the skeleton is dropped first.
        let storage_ref: &'static mut MaybeUninit<OpenObject> = unsafe { &mut *storage };
        let loaded = skel::MergeSkelBuilder::default()
            .open(storage_ref)
            .map_err(|e| fail("opening the BPF merge object", e))
            .and_then(|open| {
                open.load()
                    .map_err(|e| fail("loading the BPF merge program", e))
            });
        let skel = match loaded {
            Ok(s) => s,
            Err(e) => {
                // SAFETY: the skeleton borrowing `storage` is gone (the error dropped it).
                drop(unsafe { Box::from_raw(storage) });
                return Err(e);
            }
        };
        let linear_fd = skel.progs.merge_linear.as_fd().as_raw_fd();
        let heap_fd = skel.progs.merge_heap.as_fd().as_raw_fd();
        let map = skel.maps.arena.as_libbpf_object();
        let mut init_size: u64 = 0;
        // SAFETY: `map` is the loaded object's live arena map; libbpf returns its mmap address
        // (set at load) and writes the size of arena globals (none here) to `init_size`.
        let base = unsafe { libbpf_sys::bpf_map__initial_value(map.as_ptr(), &mut init_size) };
        let pages = skel.maps.arena.max_entries() as usize;
        if base.is_null() || init_size != 0 {
            drop(skel);
            // SAFETY: the skeleton borrowing `storage` was just dropped.
            drop(unsafe { Box::from_raw(storage) });
            return Err("the BPF arena is not mapped into user space".to_owned());
        }
        // SAFETY: libbpf mapped `pages` pages read-write at `base` for as long as the object is
        // loaded, i.e. as long as this engine; the program has no arena globals (init_size is
        // 0), so the allocator is the only one handing out that memory.
        let arena = unsafe { Arena::new(base.cast(), pages * arena::PAGE) };
        Ok(BpfEngine {
            skel: ManuallyDrop::new(skel),
            storage,
            linear_fd,
            heap_fd,
            arena,
        })
    }

    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    fn fd(&self, sel: Selection) -> i32 {
        match sel {
            Selection::Linear => self.linear_fd,
            Selection::Heap => self.heap_fd,
        }
    }

    /// Runs one merge step on the session at `session` (an arena address). The result is in the
    /// session's `result` field.
    pub fn run(&self, sel: Selection, session: u64) -> std::io::Result<()> {
        let mut args = abi::Args { session, calls: 0 };
        // SAFETY: bpf_test_run_opts is a plain C struct for which all-zero is the documented
        // "no options" value; `sz` is set below as libbpf's OPTS_VALID requires.
        let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _;
        opts.ctx_in = (&mut args as *mut abi::Args).cast();
        opts.ctx_size_in = std::mem::size_of::<abi::Args>() as u32;
        // SAFETY: the fd is a loaded program owned by this engine; ctx_in points to `args`,
        // alive for the call, of exactly ctx_size_in bytes; no other buffers are passed.
        let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(self.fd(sel), &mut opts) };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(-rc));
        }
        Ok(())
    }

    /// The instructions the verifier processed to accept the program (its complexity budget).
    pub fn verified_insns(&self, sel: Selection) -> std::io::Result<u32> {
        // SAFETY: all-zero is a valid bpf_prog_info to be filled in.
        let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: the fd is a live program; info/len describe a writable struct of len bytes.
        let rc = unsafe {
            libbpf_sys::bpf_prog_get_info_by_fd(
                self.fd(sel),
                (&mut info as *mut libbpf_sys::bpf_prog_info).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(-rc));
        }
        Ok(info.verified_insns)
    }
}

impl Drop for BpfEngine {
    fn drop(&mut self) {
        // SAFETY: dropped exactly once, here; after this nothing uses the skeleton, and the
        // storage it borrowed is freed only afterwards.
        unsafe { ManuallyDrop::drop(&mut self.skel) };
        // SAFETY: allocated by Box::into_raw in `load`; the skeleton borrowing it is gone.
        drop(unsafe { Box::from_raw(self.storage) });
    }
}

static ENGINE: OnceLock<Result<BpfEngine, String>> = OnceLock::new();

/// The process's BPF merge engine, loaded on first use; the error (why BPF cannot be used) is
/// computed once and returned to every caller.
pub fn engine() -> Result<&'static BpfEngine, &'static str> {
    ENGINE
        .get_or_init(|| {
            let r = BpfEngine::load();
            if let Err(e) = &r {
                log::warn!("ringmerge: BPF merge unavailable, merging natively: {e}");
            }
            r
        })
        .as_ref()
        .map_err(String::as_str)
}

/// The global engine's arena, if the engine is loaded (read buffers for BPF sessions live there).
pub fn loaded_arena() -> Option<&'static Arena> {
    ENGINE
        .get()
        .and_then(|r| r.as_ref().ok())
        .map(BpfEngine::arena)
}

#[cfg(test)]
mod tests;

/// libbpf's last messages (the verifier log after a rejected load), for diagnostics.
pub fn libbpf_log() -> String {
    LIBBPF_LOG.lock().clone()
}
