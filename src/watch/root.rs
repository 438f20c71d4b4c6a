//! A root: one cgroup's reader, sampled for every monitor of it.

use super::*;

/// How many snapshots of every file, and how many samples of the usage
/// alone, the sampler took (for tests and benchmarks).
pub(super) static SNAPSHOTS: AtomicU64 = AtomicU64::new(0);
pub(super) static TICKS: AtomicU64 = AtomicU64::new(0);
/// Bumped whenever a root's cgroup or limit changes: the kernel wake-ups
/// are registered again (with the registry's epoch, the whole arm key: no
/// allocation per pass).
pub(super) static ARM_GEN: AtomicU64 = AtomicU64::new(0);

/// A root's reader and what it last saw, behind the root's own lock.
pub(super) struct RootSampling {
    pub(super) reader: Reader,
    pub(super) growth: [Growth; 3],
    /// Where the cgroup was and its limit at the last sample: what kernel
    /// wake-ups are registered for (a change bumps [`ARM_GEN`]).
    pub(super) location: Option<Arc<Location>>,
    pub(super) cgroup_limit: Option<u64>,
    /// When the last snapshot was taken, and its inactive file (the working
    /// set of a sample of the usage alone is the usage less this).
    pub(super) snapshot_at: Option<Instant>,
    pub(super) inactive_file: Option<u64>,
}

pub(super) struct Root {
    pub(super) path: PathBuf,
    pub(super) sampling: Mutex<RootSampling>,
}

/// One sample of one root.
pub(super) struct Sample {
    pub(super) snap: Snapshot,
    pub(super) at: Instant,
    pub(super) ts: f64,
    pub(super) rates: [f64; 3],
}

/// A sample of the usage alone (see [`Quiet`]).
pub(super) struct TickSample {
    pub(super) usage: u64,
    /// The usage less the inactive file: read now where the usage was at
    /// or above a threshold, else the last snapshot's.
    pub(super) working_set: u64,
    pub(super) ts: f64,
    pub(super) rates: [f64; 3],
    pub(super) location: Option<Arc<Location>>,
    pub(super) cgroup_limit: Option<u64>,
}

/// What a pass read for a root. Not boxed: one per root per pass, on the
/// sampler thread's stack (a box would be an allocation per pass).
#[allow(clippy::large_enum_variant)]
pub(super) enum RootRead {
    Full(Result<Sample, String>),
    Tick(TickSample),
}

impl Root {
    pub(super) fn new(path: PathBuf) -> Root {
        Root {
            sampling: Mutex::new(RootSampling {
                reader: Reader::new(path.clone()),
                growth: [Growth::default(); 3],
                location: None,
                cgroup_limit: None,
                snapshot_at: None,
                inactive_file: None,
            }),
            path,
        }
    }

    /// Read the root now. A panic inside the reader is caught here: the
    /// reader is replaced by a fresh one and the panic's message returned.
    pub(super) fn sample(&self) -> Result<Sample, String> {
        let mut st = self.sampling.lock().unwrap_or_else(|p| p.into_inner());
        let what = format!("reading {}", self.path.display());
        let r = guard::catch(&what, || {
            #[cfg(test)]
            tests::fault(&self.path, tests::PANIC_IN_READ);
            st.reader.snapshot()
        });
        let snap = match r {
            Ok(s) => s,
            Err(p) => {
                // The reader may be half-updated: start this root afresh.
                st.reader = Reader::new(self.path.clone());
                return Err(p.to_string());
            }
        };
        let at = Instant::now();
        let ts = now_ms();
        let mut rates = [0.0; 3];
        for b in [Basis::WorkingSet, Basis::Usage, Basis::Rss] {
            let g = &mut st.growth[basis_index(b)];
            rates[basis_index(b)] = match b.bytes(&snap) {
                Some(v) => g.observe(at, v as f64),
                None => g.rate(),
            };
        }
        if st.location.as_deref() != snap.location.as_ref() {
            st.location = snap.location.clone().map(Arc::new);
            ARM_GEN.fetch_add(1, Ordering::Relaxed);
        }
        if !snap.failed.limit && st.cgroup_limit != snap.cgroup_limit {
            st.cgroup_limit = snap.cgroup_limit;
            ARM_GEN.fetch_add(1, Ordering::Relaxed);
        }
        st.snapshot_at = Some(at);
        st.inactive_file = snap.stat.as_ref().and_then(|s| s.inactive_file);
        SNAPSHOTS.fetch_add(1, Ordering::Relaxed);
        Ok(Sample {
            snap,
            at,
            ts,
            rates,
        })
    }

    pub(super) fn armed_for(&self) -> (Option<Arc<Location>>, Option<u64>) {
        let st = self.sampling.lock().unwrap_or_else(|p| p.into_inner());
        (st.location.clone(), st.cgroup_limit)
    }
}
