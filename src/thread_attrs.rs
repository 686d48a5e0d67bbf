//! The scheduling attributes a compaction thread's work runs with, so a thread that does part of
//! that work (the merge-ahead companion) can take them on.
//!
//! Operators lower compaction's priority so it yields to foreground work: RocksDB's
//! `Env::LowerThreadPoolCPUPriority` (nice 19, or `SCHED_IDLE` for `CpuPriority::kIdle`) and
//! `Env::LowerThreadPoolIOPriority` (`IOPRIO_CLASS_IDLE`) are applied by each pool thread to
//! itself, and some pin background threads to CPUs. A companion thread is made once and kept, so
//! what it inherited when it was made can go stale; it takes the compaction thread's attributes
//! again for every merge ([`ThreadAttrs::apply`]). Like RocksDB's own `port::SetCpuPriority`,
//! applying is best effort: a change the kernel refuses (raising priority without
//! `CAP_SYS_NICE`, say) leaves the attribute as it was and is reported, not fatal.

/// `IOPRIO_WHO_PROCESS` from linux/ioprio.h: with `who == 0`, the calling thread.
const IOPRIO_WHO_PROCESS: libc::c_long = 1;

/// Nice value, scheduling policy, I/O priority and CPU affinity of one thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadAttrs {
    pub nice: i32,
    /// `SCHED_OTHER`, `SCHED_BATCH` or `SCHED_IDLE` (real-time policies are not taken on).
    pub policy: i32,
    /// `ioprio_get`'s value (class << 13 | data); 0 is "none", the CPU-nice-derived default.
    pub ioprio: i32,
    /// CPUs the thread may run on; None when the kernel would not say.
    pub cpus: Option<Vec<usize>>,
}

impl ThreadAttrs {
    /// The calling thread's attributes.
    pub fn current() -> ThreadAttrs {
        ThreadAttrs::of(0)
    }

    /// Thread `tid`'s attributes (0: the calling thread).
    pub fn of(tid: i32) -> ThreadAttrs {
        ThreadAttrs {
            nice: nice_of(tid),
            // SAFETY: sched_getscheduler takes a thread id and touches no memory of ours.
            policy: unsafe { libc::sched_getscheduler(tid) },
            // SAFETY: ioprio_get takes integers and touches no memory of ours.
            ioprio: unsafe {
                libc::syscall(
                    libc::SYS_ioprio_get,
                    IOPRIO_WHO_PROCESS,
                    tid as libc::c_long,
                )
            } as i32,
            cpus: cpus_of(tid),
        }
    }

    /// Makes the calling thread's attributes these, as far as the kernel allows. Returns what
    /// could not be applied (empty when all of it was).
    pub fn apply(&self) -> Vec<String> {
        let now = ThreadAttrs::current();
        let mut failed = Vec::new();
        let errno = || std::io::Error::last_os_error();
        let takes_on = [libc::SCHED_OTHER, libc::SCHED_BATCH, libc::SCHED_IDLE];
        if self.policy != now.policy && takes_on.contains(&self.policy) {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: sched_setscheduler reads one sched_param through a valid pointer to a
            // local; pid 0 is the calling thread.
            if unsafe { libc::sched_setscheduler(0, self.policy, &param) } != 0 {
                failed.push(format!("scheduling policy {}: {}", self.policy, errno()));
            }
        }
        if self.nice != now.nice {
            // SAFETY: setpriority takes integers only; PRIO_PROCESS with who 0 is the calling
            // thread on Linux (nice values are per thread).
            if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, self.nice) } != 0 {
                failed.push(format!("nice {}: {}", self.nice, errno()));
            }
        }
        if self.ioprio != now.ioprio && self.ioprio >= 0 {
            // SAFETY: ioprio_set takes integers only; IOPRIO_WHO_PROCESS with who 0 is the
            // calling thread.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_ioprio_set,
                    IOPRIO_WHO_PROCESS,
                    0,
                    self.ioprio as libc::c_long,
                )
            };
            if rc != 0 {
                failed.push(format!("I/O priority {:#x}: {}", self.ioprio, errno()));
            }
        }
        if let Some(cpus) = &self.cpus {
            if now.cpus.as_ref() != Some(cpus) && !set_cpus_of_caller(cpus) {
                failed.push(format!("CPU affinity {cpus:?}: {}", errno()));
            }
        }
        failed
    }
}

fn nice_of(tid: i32) -> i32 {
    // getpriority may legitimately return -1, so errno tells failure apart; it cannot fail for
    // the calling thread, and 0 is the default if it somehow does.
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: getpriority takes integers only.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
    if nice == -1 && std::io::Error::last_os_error().raw_os_error() != Some(0) {
        return 0;
    }
    nice
}

fn cpus_of(tid: i32) -> Option<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit array, valid when zeroed.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into `set`.
    let rc =
        unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return None;
    }
    // CPU_SETSIZE is a small positive constant (1024).
    let cpus = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads bit `c` of `set`; c < CPU_SETSIZE keeps it inside the array.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect();
    Some(cpus)
}

fn set_cpus_of_caller(cpus: &[usize]) -> bool {
    // SAFETY: cpu_set_t is a plain bit array, valid when zeroed.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: CPU_SET writes bit `c` of `set`; c < CPU_SETSIZE keeps it inside the array.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: sched_setaffinity reads size_of::<cpu_set_t>() bytes from a valid local.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_round_trip_on_a_thread_of_their_own() {
        // On a fresh thread (nice and affinity are per thread): lower its priority, read it
        // back, restore nothing (the thread ends).
        std::thread::spawn(|| {
            let before = ThreadAttrs::current();
            let mut want = before.clone();
            want.nice = (before.nice + 3).min(19);
            want.ioprio = 3 << 13; // IOPRIO_CLASS_IDLE
            want.policy = libc::SCHED_BATCH;
            if let Some(cpus) = &before.cpus {
                want.cpus = Some(vec![cpus[0]]);
            }
            assert!(want.apply().is_empty(), "{:?}", want.apply());
            assert_eq!(ThreadAttrs::current(), want);
            // Applying again changes nothing and fails nothing.
            assert!(want.apply().is_empty());
        })
        .join()
        .unwrap();
    }
}
