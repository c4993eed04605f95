//! The process's memory allocator and thread settings, in one place: the `whichgan` binary,
//! its benchmarks and the tests all run with these, so they measure and check the same
//! configuration a user runs.
//!
//! The allocator is mimalloc, declared here so that every program linking the library uses it.
//! The thread settings are environment variables candle reads (some once, some at each matrix
//! product); a value the user has set is kept.

use std::sync::Once;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How tensor kernels share the cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parallelism {
    /// candle splits each large operation over the cores: the image-scale networks.
    WithinOperations,
    /// Each operation runs on one thread, and the work gets its parallelism by running several
    /// models or images at once: the toy networks (one thread runs a training cycle about
    /// twice as fast as two at their sizes) and feature extraction (candle's pool spins between
    /// element-wise kernels: ~16 % of an Inception pass).
    AcrossTasks,
}

/// Sets up the allocator and candle's threads for `parallelism`. Call it first thing, before
/// any tensor work; calling it again is harmless (what is read once stays as first set).
pub fn setup(parallelism: Parallelism) {
    static PROCESS_WIDE: Once = Once::new();
    PROCESS_WIDE.call_once(|| {
        keep_freed_memory();
        short_spins_in_candles_pool();
        thread_count_read_once();
        element_wise_on_the_calling_thread_on_two_cores();
    });
    if parallelism == Parallelism::AcrossTasks {
        // candle reads its thread count from this variable at each product; rayon's global
        // pool takes its own size first, so parallel tasks keep every core.
        rayon::current_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

/// mimalloc returns freed memory to the OS after a delay (1 s by default). The image networks
/// free and re-allocate buffers of megabytes in every layer, and faulting their pages in again
/// cost about two thirds of a generator pass on CPU; keeping freed memory (purge delay −1)
/// removes that.
fn keep_freed_memory() {
    // `mi_option_purge_delay`: entry 15 of mimalloc's option enum, in its v2 and v3 alike.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: mimalloc allows setting an option at any time; the index is that of its header.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // mimalloc asks the kernel for transparent huge pages; the kernel then clears 2 MiB at each
    // first touch of a new region, which cost StyleGAN2 training about a third of its time
    // here (its own THP option is read before `main`). Disabling THP for the process avoids it.
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// candle splits large element-wise operations over a pool of its own whose threads spin
/// (25 000 rounds by default) waiting for the next one; the spinning competed with the
/// convolutions' threads for the cores and took a sixth of the CPU time of a StyleGAN2
/// discriminator pass on 2 cores. A short spin leaves the cores to the work (the pool reads the
/// variable when it starts, at the first such operation).
fn short_spins_in_candles_pool() {
    set_unless_set("CANDLE_BARRIER_POOL_SPIN_LIMIT", "500");
}

/// Without `RAYON_NUM_THREADS` set, candle works its thread count out again at every matrix
/// product, reading the CPU topology from the system (a StyleGAN2 training cycle on 2 cores ran
/// ~7 % faster without that). The count it finds is set in the variable once, after rayon's
/// global pool has taken its own size, so both keep the sizes they would have had.
fn thread_count_read_once() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        rayon::current_num_threads();
        let threads = candle_core::utils::get_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
}

/// On two cores candle's element-wise kernels run on the calling thread: handing each one to
/// its pool and waking the pool's thread cost more than the second core gained (a StyleGAN2
/// training cycle ran ~7 % faster without it). With more cores the pool stays.
fn element_wise_on_the_calling_thread_on_two_cores() {
    if rayon::current_num_threads() <= 2 {
        set_unless_set("CANDLE_NUM_THREADS", "1");
    }
}

fn set_unless_set(name: &str, value: &str) {
    if std::env::var_os(name).is_none() {
        std::env::set_var(name, value);
    }
}

/// The processor's architecture and the vector instructions among those the matrix kernels
/// choose their code by at run time (`avx2`, `fma`, `avx512f` on x86-64): results computed with
/// other instructions round differently, so runs record them beside their numbers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CpuFeatures {
    pub arch: &'static str,
    pub features: Vec<&'static str>,
}

impl CpuFeatures {
    pub fn detect() -> CpuFeatures {
        #[cfg(target_arch = "x86_64")]
        let features = [
            ("avx", std::arch::is_x86_feature_detected!("avx")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
        #[cfg(not(target_arch = "x86_64"))]
        let features = Vec::new();
        CpuFeatures {
            arch: std::env::consts::ARCH,
            features,
        }
    }
}

impl std::fmt::Display for CpuFeatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.features.is_empty() {
            true => write!(f, "{}", self.arch),
            false => write!(f, "{} with {}", self.arch, self.features.join(", ")),
        }
    }
}
