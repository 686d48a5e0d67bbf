//! Merge-ahead: a compaction's merge session runs on a companion thread of the compaction
//! thread, a few batches ahead of RocksDB's `CompactionIterator`.
//!
//! Once the reads overlapped the merge, the compaction thread still did all of ringmerge's CPU
//! work in line with RocksDB's: reaping reads (for buffered files the page-cache copy happens in
//! that `io_uring_enter`), verifying checksums, decompressing and merging. In a compressed
//! compaction that was about a quarter of the thread, beside RocksDB's own output compression.
//! Here that work runs on a second core while the compaction thread builds the output.
//!
//! Every compaction thread gets one companion thread (`ringmerge-ahead`), made on first use and
//! kept, so its cached io_uring is again one ring per compaction thread. The merged stream is
//! the same: the session, its reads and its merge are unchanged; only the batches are handed
//! over. C++ sees the usual contract, the previous batch readable until the next-but-one
//! `next_batch`. Both merges still pin values in input chunks: the consumer tells the companion
//! how many batches it asked for, and a chunk stays held until the consumer is two batches past
//! the last batch pointing into it, however far ahead the companion runs (it then holds more
//! chunks, and the depth rule copies values instead of pinning when a run's reads would run out,
//! so the companion never waits for the consumer to release a chunk; merge/held.rs). Only a BPF
//! batch's keys and copied values are copied out of the program's output area.
//!
//! Everything that can refuse the compaction still happens in `open`, which waits for the
//! session to open on the companion. Errors and panics of the companion come back through the
//! handoff as the inline session would return them. The session lives until the consumer is
//! dropped (its last batches may point into the session's chunks), and dropping the consumer
//! stops the companion and waits until the session (files, ring, buffers) is gone.

use crate::compaction::{Batch, BatchEntry, CompactionSession, CompactionSpec, Summary};
use crate::error::Error;
use crate::thread_attrs::ThreadAttrs;
use parking_lot::{Condvar, Mutex};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Batches the companion may have ready before the consumer takes them.
pub const AHEAD_BATCHES: usize = 2;
/// Batches in play: the consumer's current and previous one, the ready ones, the one being made.
const SLOTS: usize = AHEAD_BATCHES + 3;

/// Why a merge-ahead session stopped early.
#[derive(Debug)]
pub enum Failure {
    Error(Error),
    /// A panic caught on the companion thread, with its message.
    Panic(String),
}

enum End {
    Exhausted,
    Stopped,
    Failed(Failure),
}

struct Ready {
    batch: Batch,
    bytes_read: u64,
}

#[derive(Default)]
struct State {
    opened: bool,
    ready: VecDeque<Ready>,
    free: Vec<Batch>,
    /// `next_batch` calls the consumer has made (the one it may be waiting in included): batches
    /// before `asked - 1` are not readable any more, so the chunks only they point into may go
    /// back to the reader.
    asked: u64,
    /// Set by the consumer when it will take no more batches.
    stop: bool,
    /// Set by the companion when the stream ended (exhausted, stopped, failed).
    end: Option<End>,
    /// Set by the companion once the session is dropped (after `stop`): nothing of it is
    /// alive any more.
    gone: bool,
    /// Bytes read that no ready batch carries (those of the last, empty batch).
    tail_bytes_read: u64,
    summary: Summary,
    companion_cpu: Duration,
    /// The compaction thread's scheduling attributes the companion could not take on.
    attrs_unapplied: Vec<String>,
    /// The companion's thread id (for tests).
    companion_tid: i32,
}

struct Handoff {
    state: Mutex<State>,
    /// Signals the consumer: a batch is ready, the session opened, or the companion ended.
    to_consumer: Condvar,
    /// Signals the companion: a batch slot is free, or stop.
    to_companion: Condvar,
}

struct Job {
    spec: CompactionSpec,
    /// The compaction thread's nice value, policy, I/O priority and CPUs, which the companion
    /// takes on for this merge (an operator's lowered compaction priority holds for it too).
    attrs: ThreadAttrs,
    handoff: Arc<Handoff>,
    /// The companion's busy flag, cleared when this job's session is gone.
    busy: Arc<AtomicBool>,
}

/// A companion thread and the queue of jobs it runs, one merge at a time.
struct Companion {
    jobs: mpsc::Sender<Job>,
    /// A job runs (from open until its session is dropped).
    busy: Arc<AtomicBool>,
}

impl Companion {
    fn spawn() -> std::io::Result<Companion> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let busy = Arc::new(AtomicBool::new(false));
        std::thread::Builder::new()
            .name("ringmerge-ahead".to_owned())
            .spawn(move || {
                // Ends when the compaction thread (its thread-local sender) goes away.
                while let Ok(job) = queue.recv() {
                    run(job);
                }
            })?;
        Ok(Companion { jobs, busy })
    }
}

thread_local! {
    static COMPANION: RefCell<Option<Companion>> = const { RefCell::new(None) };
}

/// A merge no companion thread could take, given back with the reason.
type Unserved = Box<(CompactionSpec, String)>;

/// Hands `job` to this thread's companion (made on first use), which takes on `attrs` (this
/// thread's) for it. A second merge alive on the same thread gets a companion of its own, which
/// ends with that job. Err gives the spec back when no thread could be made.
/// (Boxed: the spec is large, and this is the rare path.)
fn submit(spec: CompactionSpec, attrs: ThreadAttrs, handoff: Arc<Handoff>) -> Result<(), Unserved> {
    let mut job = Some(Job {
        spec,
        attrs,
        handoff,
        busy: Arc::new(AtomicBool::new(true)),
    });
    let cached = COMPANION.try_with(|slot| -> Result<(), String> {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = Some(
                Companion::spawn()
                    .map_err(|e| format!("cannot start the merge-ahead thread: {e}"))?,
            );
        }
        let companion = slot.as_ref().expect("made above");
        if companion.busy.swap(true, Ordering::AcqRel) {
            return Ok(()); // busy: `job` stays for a private companion
        }
        let mut j = job.take().expect("not sent yet");
        j.busy = companion.busy.clone();
        match companion.jobs.send(j) {
            Ok(()) => Ok(()),
            Err(mpsc::SendError(back)) => {
                // The thread is gone (it cannot panic: `run` catches); make a new one next time.
                *slot = None;
                job = Some(back);
                Err("the merge-ahead thread ended".to_owned())
            }
        }
    });
    let job = match (cached, job) {
        (_, None) => return Ok(()),
        (Ok(Err(why)), Some(job)) => return Err(Box::new((job.spec, why))),
        // Busy, or thread-local storage being torn down: a companion of its own.
        (_, Some(job)) => job,
    };
    let companion = match Companion::spawn() {
        Ok(c) => c,
        Err(e) => {
            return Err(Box::new((
                job.spec,
                format!("cannot start the merge-ahead thread: {e}"),
            )))
        }
    };
    // Dropping the sender after this job lets the private thread end with it.
    companion.jobs.send(job).map_err(|mpsc::SendError(job)| {
        Box::new((job.spec, "the merge-ahead thread ended".to_owned()))
    })
}

/// Thread CPU time (`CLOCK_THREAD_CPUTIME_ID`) of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer to a local.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The companion's side of one merge: open the session, then make batches into free slots until
/// the stream ends, the consumer stops, or something fails.
fn run(job: Job) {
    let Job {
        spec,
        attrs,
        handoff,
        busy,
    } = job;
    {
        let unapplied = attrs.apply();
        let mut st = handoff.state.lock();
        st.attrs_unapplied = unapplied;
        // SAFETY: gettid takes no arguments and cannot fail.
        st.companion_tid = unsafe { libc::gettid() };
    }
    let cpu0 = thread_cpu();
    // The session outlives `produce`: batches still readable by the consumer point into its
    // chunks (pinned values), so it is dropped only once the consumer has stopped.
    let mut session: Option<CompactionSession> = None;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        produce(spec, &handoff, cpu0, &mut session)
    }));
    let end = match outcome {
        Ok(Ok(end)) => end,
        Ok(Err(e)) => End::Failed(Failure::Error(e)),
        Err(p) => End::Failed(Failure::Panic(crate::error::panic_message(p))),
    };
    {
        let mut st = handoff.state.lock();
        st.companion_cpu = thread_cpu().saturating_sub(cpu0);
        st.end = Some(end);
        handoff.to_consumer.notify_all();
        while !st.stop {
            handoff.to_companion.wait(&mut st);
        }
    }
    // Files closed, the ring back in this thread's cache, the buffers back in its pool. A
    // panic while dropping leaves them to the thread's end; the consumer still hears of it.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(session)));
    // Idle before the consumer can go on, so its next merge finds the companion free.
    busy.store(false, Ordering::Release);
    let mut st = handoff.state.lock();
    st.gone = true;
    handoff.to_consumer.notify_all();
}

fn produce(
    spec: CompactionSpec,
    handoff: &Handoff,
    cpu0: Duration,
    slot: &mut Option<CompactionSession>,
) -> Result<End, Error> {
    let session = slot.insert(CompactionSession::open(spec)?);
    {
        let mut st = handoff.state.lock();
        st.summary = session.summary();
        st.opened = true;
        handoff.to_consumer.notify_all();
    }
    const CPU_EVERY: u64 = 16;
    let mut made_batches = 0u64;
    loop {
        let (mut batch, consumer_asked) = {
            let mut st = handoff.state.lock();
            loop {
                if st.stop {
                    st.summary = session.summary();
                    return Ok(End::Stopped);
                }
                if let Some(b) = st.free.pop() {
                    break (b, st.asked);
                }
                handoff.to_companion.wait(&mut st);
            }
        };
        let made = session.next_batch_into(&mut batch, consumer_asked);
        let bytes_read = session.take_bytes_read();
        // Refreshed after every batch, not only at the end: the consumer may read the summary
        // while this thread is still merging (a compaction that stops early writes its LOG
        // line before it drops the merge). It costs a pass over the runs' counters per batch
        // of ~1 MiB, outside the handoff's lock.
        let summary = session.summary();
        // The thread's CPU clock is a syscall (no vDSO for CPU-time clocks): read it every
        // CPU_EVERY batches only, as a mid-merge summary may be that stale; the final figure is
        // taken when the session ends.
        made_batches += 1;
        let cpu = (made_batches % CPU_EVERY == 0).then(|| thread_cpu().saturating_sub(cpu0));
        let mut st = handoff.state.lock();
        st.summary = summary;
        if let Some(cpu) = cpu {
            st.companion_cpu = cpu;
        }
        match made {
            Ok(true) => st.ready.push_back(Ready { batch, bytes_read }),
            Ok(false) => {
                st.tail_bytes_read += bytes_read;
                return Ok(End::Exhausted);
            }
            Err(e) => {
                st.tail_bytes_read += bytes_read;
                return Err(e);
            }
        }
        handoff.to_consumer.notify_all();
    }
}

/// The consumer's side: what the API calls on the compaction thread.
pub struct CompanionSession {
    handoff: Arc<Handoff>,
    current: Option<Batch>,
    previous: Option<Batch>,
    bytes_read: u64,
    /// Time the consumer waited for a batch.
    wait: Duration,
    /// Set once the companion's end was taken.
    ended: bool,
}

impl CompanionSession {
    /// Opens `spec`'s session on this thread's companion, which takes on `attrs` (this thread's,
    /// `ThreadAttrs::current()`), and waits until it is open (or failed).
    /// Err((spec, why)) when no companion thread can run it: the caller merges in line.
    pub(crate) fn open(
        spec: CompactionSpec,
        attrs: ThreadAttrs,
    ) -> Result<Result<CompanionSession, Failure>, Unserved> {
        let handoff = Arc::new(Handoff {
            state: Mutex::new(State {
                free: (0..SLOTS).map(|_| Batch::default()).collect(),
                ..State::default()
            }),
            to_consumer: Condvar::new(),
            to_companion: Condvar::new(),
        });
        submit(spec, attrs, handoff.clone())?;
        let mut st = handoff.state.lock();
        while !st.opened && st.end.is_none() {
            handoff.to_consumer.wait(&mut st);
        }
        if !st.opened {
            let failure = match st.end.take() {
                Some(End::Failed(f)) => f,
                _ => Failure::Panic("merge-ahead ended before opening".to_owned()),
            };
            st.stop = true;
            handoff.to_companion.notify_all();
            while !st.gone {
                handoff.to_consumer.wait(&mut st);
            }
            return Ok(Err(failure));
        }
        drop(st);
        Ok(Ok(CompanionSession {
            handoff,
            current: None,
            previous: None,
            bytes_read: 0,
            wait: Duration::ZERO,
            ended: false,
        }))
    }

    /// Takes the next batch; false once the stream is exhausted. The batch before stays
    /// readable until the call after this one.
    pub fn next_batch(&mut self) -> Result<bool, Failure> {
        let mut st = self.handoff.state.lock();
        st.asked += 1;
        if let Some(b) = self.previous.take() {
            st.free.push(b);
            self.handoff.to_companion.notify_one();
        }
        self.previous = self.current.take();
        if self.ended {
            return Ok(false);
        }
        let t0 = Instant::now();
        loop {
            if let Some(r) = st.ready.pop_front() {
                self.bytes_read += r.bytes_read;
                self.current = Some(r.batch);
                self.wait += t0.elapsed();
                return Ok(true);
            }
            if let Some(end) = st.end.take() {
                self.ended = true;
                self.bytes_read += std::mem::take(&mut st.tail_bytes_read);
                self.wait += t0.elapsed();
                return match end {
                    End::Exhausted | End::Stopped => Ok(false),
                    End::Failed(f) => Err(f),
                };
            }
            self.handoff.to_consumer.wait(&mut st);
        }
    }

    pub fn batch_data(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |b| &b.data)
    }

    pub fn batch_entries(&self) -> &[BatchEntry] {
        self.current.as_ref().map_or(&[], |b| &b.entries)
    }

    /// Entry `i` of the current batch as (internal key, value).
    pub fn batch_entry(&self, i: usize) -> (&[u8], &[u8]) {
        let batch = self.current.as_ref().expect("a current batch");
        // SAFETY: the current batch is readable: its pinned values' chunks stay held until this
        // consumer has asked for two more batches (`State::asked`), which needs `&mut self`.
        unsafe { batch.entry(i) }
    }

    /// Bytes read for the batches taken since the last call.
    pub fn take_bytes_read(&mut self) -> u64 {
        std::mem::take(&mut self.bytes_read)
    }

    /// The session's figures as of the last batch made, with the handoff's own.
    pub fn summary(&self) -> Summary {
        let st = self.handoff.state.lock();
        let mut s = st.summary.clone();
        s.ahead = true;
        s.ahead_wait = self.wait;
        s.ahead_cpu = st.companion_cpu;
        if !st.attrs_unapplied.is_empty() {
            s.ahead_attrs_unapplied = Some(st.attrs_unapplied.join("; "));
        }
        s
    }

    /// The companion's thread id (tests look at its scheduling attributes).
    #[cfg(test)]
    pub fn companion_tid(&self) -> i32 {
        self.handoff.state.lock().companion_tid
    }
}

impl Drop for CompanionSession {
    fn drop(&mut self) {
        let mut st = self.handoff.state.lock();
        st.stop = true;
        self.handoff.to_companion.notify_all();
        // Wait for the session to be gone, so its files and buffers do not outlive the
        // compaction that owned them.
        while !st.gone {
            self.handoff.to_consumer.wait(&mut st);
        }
    }
}

/// A compaction's merge, in line on the compaction thread or on its companion: what the API
/// drives (and the merge tests, through the same calls).
pub enum Session {
    Inline(Box<CompactionSession>),
    Ahead(CompanionSession),
}

impl Session {
    /// Opens `spec` on the companion when `ahead`, else in line. When no companion can run it,
    /// or it could only share the compaction thread's single CPU, the merge runs in line and the
    /// second value says why.
    pub fn open(spec: CompactionSpec, ahead: bool) -> (Result<Session, Failure>, Option<String>) {
        let inline = |spec| {
            CompactionSession::open(spec)
                .map(|s| Session::Inline(Box::new(s)))
                .map_err(Failure::Error)
        };
        if !ahead {
            return (inline(spec), None);
        }
        // The companion takes the compaction thread's CPU affinity (thread_attrs.rs). Pinned to
        // one CPU, the two threads would only take turns on it, and the handoff costs CPU (the
        // LZ4 manual compaction under `taskset -c 1`: 0.81-0.97 s of process CPU ahead against
        // 0.71 s in line).
        let attrs = ThreadAttrs::current();
        if let Some(cpus) = &attrs.cpus {
            if cpus.len() < 2 {
                let why = format!(
                    "the compaction thread may run on one CPU only ({cpus:?}), so a companion \
                     could not run beside it"
                );
                return (inline(spec), Some(why));
            }
        }
        match CompanionSession::open(spec, attrs) {
            Ok(opened) => (opened.map(Session::Ahead), None),
            Err(unserved) => {
                let (spec, why) = *unserved;
                log::warn!("ringmerge: merging in line: {why}");
                (inline(spec), Some(why))
            }
        }
    }

    /// The next batch; false once the stream is exhausted.
    pub fn next_batch(&mut self) -> Result<bool, Failure> {
        match self {
            Session::Inline(s) => s.next_batch().map_err(Failure::Error),
            Session::Ahead(a) => a.next_batch(),
        }
    }

    pub fn batch_data(&self) -> &[u8] {
        match self {
            Session::Inline(s) => s.batch_data(),
            Session::Ahead(a) => a.batch_data(),
        }
    }

    pub fn batch_entries(&self) -> &[BatchEntry] {
        match self {
            Session::Inline(s) => s.batch_entries(),
            Session::Ahead(a) => a.batch_entries(),
        }
    }

    /// Entry `i` of the current batch as (internal key, value).
    pub fn batch_entry(&self, i: usize) -> (&[u8], &[u8]) {
        match self {
            Session::Inline(s) => s.batch_entry(i),
            Session::Ahead(a) => a.batch_entry(i),
        }
    }

    pub fn take_bytes_read(&mut self) -> u64 {
        match self {
            Session::Inline(s) => s.take_bytes_read(),
            Session::Ahead(a) => a.take_bytes_read(),
        }
    }

    pub fn summary(&self) -> Summary {
        match self {
            Session::Inline(s) => s.summary(),
            Session::Ahead(a) => a.summary(),
        }
    }
}
