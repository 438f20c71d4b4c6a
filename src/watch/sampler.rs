//! The registry of monitors, sinks and roots, and the sampler thread.

use super::*;

pub(super) struct Monitor {
    pub(super) id: u32,
    pub(super) env: usize,
    pub(super) config: Config,
    pub(super) block: Arc<Block>,
    pub(super) state: Mutex<MonitorState>,
}

impl Monitor {
    pub(super) fn state(&self) -> MutexGuard<'_, MonitorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Default)]
pub(super) struct Registry {
    pub(super) monitors: Vec<Arc<Monitor>>,
    pub(super) sinks: HashMap<usize, Box<dyn Sink>>,
    pub(super) roots: HashMap<PathBuf, Arc<Root>>,
    pub(super) next_id: u32,
    /// The thread is alive (it clears this itself, under the lock, when it
    /// finds no monitors and exits).
    pub(super) running: bool,
    pub(super) thread_id: Option<i64>,
    /// Interrupts the thread's wait; lives as long as the thread.
    pub(super) wake: Option<Arc<OwnedFd>>,
    /// The kernel wake-ups the thread has in force, for `info`.
    pub(super) trigger_kinds: Vec<String>,
    /// Bumped whenever monitors change, so the thread re-arms its triggers.
    pub(super) epoch: u64,
}

impl Registry {
    /// Interrupt the thread's wait (monitors changed).
    pub(super) fn wake(&self) {
        if let Some(fd) = &self.wake {
            wake_fd(fd.as_raw_fd());
        }
    }

    pub(super) fn deliver(&self, events: Vec<Event>) {
        for ev in events {
            // A monitor closed meanwhile (perhaps by a listener) gets nothing more.
            let Some(m) = self.monitors.iter().find(|m| m.id == ev.monitor) else {
                continue;
            };
            if let Some(sink) = self.sinks.get(&m.env) {
                // A sink that panics loses this event, never the thread.
                let _ = guard::catch("delivering an event", || sink.deliver(ev));
            }
        }
    }
}

pub(super) fn eventfd() -> Option<OwnedFd> {
    // SAFETY: plain syscall; the fd is owned on success.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(super) fn wake_fd(fd: RawFd) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: an 8-byte buffer to our own nonblocking eventfd.
    unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
}

pub struct Sampler {
    pub(super) inner: Mutex<Registry>,
}

pub static SAMPLER: once_cell::sync::Lazy<Sampler> = once_cell::sync::Lazy::new(Sampler::new);

pub(super) fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN)
}

pub(super) fn basis_index(b: Basis) -> usize {
    match b {
        Basis::WorkingSet => 0,
        Basis::Usage => 1,
        Basis::Rss => 2,
    }
}

/// What the sampler reports about itself.
#[derive(Debug, Clone, Default)]
pub struct Info {
    pub running: bool,
    pub thread_id: Option<i64>,
    pub monitors: usize,
    pub roots: usize,
    pub triggers: Vec<String>,
    /// Snapshots of every file, and samples of the usage alone, taken so far.
    pub snapshots: u64,
    pub ticks: u64,
}

/// What a pass works on, copied out of the registry.
pub(super) struct Work {
    pub(super) epoch: u64,
    pub(super) monitors: Vec<Arc<Monitor>>,
    pub(super) roots: Vec<Arc<Root>>,
}

impl Sampler {
    pub(crate) fn new() -> Sampler {
        Sampler {
            inner: Mutex::new(Registry::default()),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register a sink for an environment (replacing none that exists).
    pub fn has_sink(&self, env: usize) -> bool {
        self.lock().sinks.contains_key(&env)
    }

    pub fn add_sink(&self, env: usize, sink: Box<dyn Sink>) {
        self.lock().sinks.insert(env, sink);
    }

    /// Start a monitor. Its first sample is taken here, on the caller's
    /// thread, before this returns (its events are delivered through the
    /// sink like any other); then the sampler thread takes over, started if
    /// it is not running.
    pub fn start(&'static self, env: usize, config: Config) -> Result<(u32, Arc<Block>), String> {
        let block = Block::new();
        let (id, root) = {
            let mut reg = self.lock();
            reg.next_id = reg.next_id.wrapping_add(1).max(1);
            let root = reg
                .roots
                .entry(config.root.clone())
                .or_insert_with(|| Arc::new(Root::new(config.root.clone())))
                .clone();
            (reg.next_id, root)
        };
        // Its last-words file held open (and its record owned, or not) from now
        // until the monitor closes: src/watch/owner.rs.
        if let Some(path) = config.path() {
            owner::hold(path);
        }
        let detector = config.stall.map(stall::Detector::new);
        if detector.is_some() {
            block.set(block::STALLED, 0.0);
            block.set(block::STALLED_SECONDS, 0.0);
        }
        let m = Arc::new(Monitor {
            id,
            env,
            config,
            block: block.clone(),
            state: Mutex::new(MonitorState {
                stall: detector,
                ..MonitorState::default()
            }),
        });

        // Which allocator totals the verdict can read, found while the
        // process is calm (a probe allocation: see `alloc`), not at the
        // first record, at the limit, beside a thread allocating fast.
        if m.config.root == Path::new("/") {
            alloc::source();
        }
        // The first sample, outside the registry lock.
        let v8 = latest_v8(&self.lock().monitors);
        let mut events = Vec::new();
        let mut stderr_taken = false;
        let reading = RootRead::Full(root.sample());
        let no_triggers = |_: &Path, _: u64| false;
        step(
            &m,
            &reading,
            v8,
            &no_triggers,
            &mut stderr_taken,
            &mut events,
        );

        let config_path = m.config.path().map(Path::to_path_buf);
        let mut reg = self.lock();
        // The root may have been dropped meanwhile (its last other monitor closed).
        reg.roots.entry(root.path.clone()).or_insert(root);
        reg.monitors.push(m);
        reg.epoch += 1;
        reg.deliver(events);
        if !reg.running {
            let wake = eventfd().map(Arc::new);
            let thread_wake = wake.clone();
            let spawned = std::thread::Builder::new()
                .name("oomguard-sampler".into())
                .stack_size(256 * 1024)
                .spawn(move || self.run(thread_wake));
            if let Err(e) = spawned {
                reg.monitors.retain(|m| m.id != id);
                drop(reg);
                if let Some(path) = config_path.as_deref() {
                    owner::release(path);
                }
                self.forget_roots();
                return Err(format!("cannot start the sampler thread: {e}"));
            }
            reg.running = true;
            reg.wake = wake;
        }
        reg.wake();
        Ok((id, block))
    }

    /// Stop a monitor. Returns false if no such monitor was running. Never
    /// waits for the sampler thread (which exits by itself when it finds no
    /// monitors); waits at most for a last-words write of this monitor in
    /// progress (non-blocking, a few µs).
    pub fn stop(&self, id: u32) -> bool {
        let closed = self.remove(|m| m.id == id);
        let found = !closed.is_empty();
        self.finish(closed);
        found
    }

    /// Stop every monitor of an environment and forget its sink (the
    /// environment is going away: a worker terminating, or exit).
    pub fn drop_env(&self, env: usize) {
        let closed = self.remove(|m| m.env == env);
        let sink = self.lock().sinks.remove(&env);
        self.finish(closed);
        drop(sink);
    }

    /// Take monitors out of the registry; returns each with whether another
    /// live monitor still writes its last-words path.
    pub(super) fn remove(&self, which: impl Fn(&Monitor) -> bool) -> Vec<(Arc<Monitor>, bool)> {
        let mut reg = self.lock();
        let (gone, kept): (Vec<_>, Vec<_>) = reg.monitors.drain(..).partition(|m| which(m));
        reg.monitors = kept;
        let out = gone
            .into_iter()
            .map(|m| {
                let shared = m
                    .config
                    .path()
                    .is_some_and(|p| reg.monitors.iter().any(|o| o.config.path() == Some(p)));
                (m, shared)
            })
            .collect();
        reg.epoch += 1;
        // Readers of roots nobody watches are closed (their descriptors too,
        // once the thread's pass in progress lets go of them).
        let live: Vec<PathBuf> = reg.monitors.iter().map(|m| m.config.root.clone()).collect();
        reg.roots.retain(|root, _| live.contains(root));
        publish_stalls(&reg.monitors);
        reg.wake();
        out
    }

    pub(super) fn forget_roots(&self) {
        let mut reg = self.lock();
        let live: Vec<PathBuf> = reg.monitors.iter().map(|m| m.config.root.clone()).collect();
        reg.roots.retain(|root, _| live.contains(root));
    }

    /// Closed monitors: nothing more is written for them, and a last-words
    /// file left while below every threshold is emptied (a clean shutdown
    /// must not show a stale warning as its termination message), unless
    /// another live monitor writes the same file.
    pub(super) fn finish(&self, closed: Vec<(Arc<Monitor>, bool)>) {
        for (m, shared) in closed {
            let mut st = m.state();
            st.closed = true;
            lastwords::forget_appendix(m.id);
            if let Some(path) = m.config.path() {
                if !shared && st.level == 0 && st.record.wrote_file {
                    let _ = lastwords::empty_file(path);
                }
                owner::release(path);
            }
        }
    }

    /// The shared block of a running monitor.
    pub fn block(&self, id: u32) -> Option<Arc<Block>> {
        self.lock()
            .monitors
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.block.clone())
    }

    pub fn info(&self) -> Info {
        let reg = self.lock();
        Info {
            running: reg.running,
            thread_id: reg.thread_id,
            monitors: reg.monitors.len(),
            roots: reg.roots.len(),
            triggers: reg.trigger_kinds.clone(),
            snapshots: SNAPSHOTS.load(Ordering::Relaxed),
            ticks: TICKS.load(Ordering::Relaxed),
        }
    }

    pub(super) fn run(&'static self, wake: Option<Arc<OwnedFd>>) {
        // Stalls: the sampler must keep running when the cgroup's page
        // cache (its own code included) is reclaimed and faulted back.
        pin::pin_sampler_code();
        prefer_short_slices();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i64;
        let mut triggers = Triggers::default();
        let mut armed: Option<ArmKey> = None;
        let mut last_events_wake: Option<Instant> = None;
        let mut fds: Vec<RawFd> = Vec::new();
        // The last wait may have ended on a readable fd (the wake fd or a
        // trigger): read them only then (on a timeout none is).
        let mut ready = true;
        let mut work = Work {
            epoch: 0,
            monitors: Vec::new(),
            roots: Vec::new(),
        };
        loop {
            // A wake-up that comes after this sees the new monitors; one
            // before it is consumed here, by the pass it asked for.
            if let Some(w) = wake.as_ref().filter(|_| ready) {
                let mut buf = [0u8; 8];
                // SAFETY: nonblocking read into a local buffer.
                unsafe { libc::read(w.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            }
            // 1. Under the lock: what to sample.
            {
                let mut reg = self.lock();
                if reg.monitors.is_empty() {
                    reg.running = false;
                    reg.thread_id = None;
                    reg.trigger_kinds.clear();
                    reg.wake = None;
                    return;
                }
                reg.thread_id = Some(tid);
                work.epoch = reg.epoch;
                work.monitors.extend(reg.monitors.iter().cloned());
                work.roots.extend(reg.roots.values().cloned());
            }

            // 2. Unlocked: read, decide, write last words.
            trace::record(
                trace::PASS,
                0,
                now_ms(),
                f64::NAN,
                work.monitors.len() as f64,
                0.0,
                0.0,
                [0; 3],
            );
            let mut events = Vec::new();
            let kernel = |dir: &Path, at: u64| triggers.has_usage_threshold(dir, at);
            let wait = match guard::catch("a sampler pass", || pass(&work, &kernel, &mut events)) {
                Ok(w) => w,
                Err(p) => {
                    // Outside any one root or monitor: every monitor hears it once.
                    let msg = p.to_string();
                    for m in &work.monitors {
                        say_panic(m, &mut m.state(), &msg, &mut events);
                    }
                    RETRY_AFTER
                }
            };

            // 3. Under the lock: publish.
            self.lock().deliver(events);

            // 4. Unlocked: re-register kernel wake-ups when monitors, a
            // cgroup or a limit changed. Registering a v1 trigger can block
            // for tens of ms in the kernel (synchronize_rcu): that time
            // counts against the wait.
            let mut wait = wait;
            let key = arm_key(&work);
            if armed.as_ref() != Some(&key) {
                let t0 = Instant::now();
                let (usage, events) = arm_plan(&work);
                if guard::catch("registering kernel wake-ups", || {
                    triggers.set(&usage, &events)
                })
                .is_err()
                {
                    triggers = Triggers::default();
                }
                armed = Some(key);
                wait = wait.saturating_sub(t0.elapsed());
                self.lock().trigger_kinds = triggers.kinds();
            }
            // Let go of closed monitors and roots (their descriptors); the
            // vectors are kept for the next pass (no allocation per pass).
            work.monitors.clear();
            work.roots.clear();

            // 5. Sleep until the interval passes, a kernel trigger fires, or
            // a monitor is added or removed (the wake fd).
            let with_events = last_events_wake.is_none_or(|t| t.elapsed() >= EVENTS_WAKE_GAP);
            triggers.poll_fds_into(with_events, &mut fds);
            fds.extend(wake.as_ref().map(|w| w.as_raw_fd()));
            trace::record(
                trace::WAIT,
                0,
                now_ms(),
                f64::NAN,
                wait.as_secs_f64() * 1000.0,
                0.0,
                0.0,
                [fds.len() as i32, 0, 0],
            );
            let slept = Instant::now();
            ready = Triggers::wait(&fds, wait);
            trace::record(
                trace::WOKE,
                0,
                now_ms(),
                f64::NAN,
                slept.elapsed().as_secs_f64() * 1000.0,
                0.0,
                0.0,
                [0; 3],
            );
            if ready && triggers.drain() {
                last_events_wake = Some(Instant::now());
            }
        }
    }
}

/// Ask the scheduler for short time slices for this thread (Linux 6.12+,
/// EEVDF's custom slice: `sched_setattr` with `sched_runtime` under
/// SCHED_OTHER, no privilege needed, nice unchanged). A thread that asks for
/// 0.1 ms gets an earlier deadline when it wakes, so it runs soon after its
/// timer or a kernel wake-up even with every core busy; it uses microseconds
/// per wake-up, so it takes nothing from anyone. Traced kills under two
/// CPU-bound processes showed the sampler waiting 50-130 ms for a CPU in
/// the last moments before a kill. Older kernels refuse it: nothing changes.
pub(super) fn prefer_short_slices() {
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
        util_min: u32,
        util_max: u32,
    }
    // SAFETY: plain syscalls on this thread with a valid struct.
    unsafe {
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
        if nice == -1 && *libc::__errno_location() != 0 {
            return;
        }
        if libc::sched_getscheduler(0) != libc::SCHED_OTHER {
            return;
        }
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: libc::SCHED_OTHER as u32,
            flags: 0,
            nice,
            priority: 0,
            runtime: 100_000,
            deadline: 0,
            period: 0,
            util_min: 0,
            util_max: 0,
        };
        libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0);
    }
}

pub(super) type ArmKey = (u64, u64);

pub(super) fn arm_key(work: &Work) -> ArmKey {
    (work.epoch, ARM_GEN.load(Ordering::Relaxed))
}

/// The kernel wake-ups the live monitors want: v1 usage thresholds through
/// `cgroup.event_control` (usage is never below the working set, so it
/// crosses first), v2 `memory.events` changes.
pub(super) fn arm_plan(work: &Work) -> (Vec<(Location, u64)>, Vec<Location>) {
    let mut usage: Vec<(Location, u64)> = Vec::new();
    let mut events: Vec<Location> = Vec::new();
    for m in &work.monitors {
        let Some(root) = work.roots.iter().find(|r| r.path == m.config.root) else {
            continue;
        };
        let (Some(loc), limit) = root.armed_for() else {
            continue;
        };
        if let Some(limit) = limit {
            for t in &m.config.thresholds {
                usage.push(((*loc).clone(), threshold_bytes(limit, *t)));
            }
        }
        if !events.iter().any(|l| l.dir == loc.dir) {
            events.push((*loc).clone());
        }
    }
    (usage, events)
}

/// The usage value a v1 kernel trigger is registered at for a threshold.
pub(super) fn threshold_bytes(limit: u64, threshold: f64) -> u64 {
    (limit as f64 * threshold) as u64
}

/// One pass: sample every root, step every monitor. Returns how long to sleep.
pub(super) fn pass(
    work: &Work,
    kernel: &dyn Fn(&Path, u64) -> bool,
    events: &mut Vec<Event>,
) -> Duration {
    let readings: Vec<(&Path, RootRead)> = work
        .roots
        .iter()
        .map(|r| (r.path.as_path(), read_root(r, &work.monitors)))
        .collect();
    // Several monitors may cross in one pass: stderr gets one line.
    let mut stderr_taken = false;
    let v8 = latest_v8(&work.monitors);
    let mut wait = Duration::from_secs(3600);
    for m in &work.monitors {
        let Some((_, reading)) = readings.iter().find(|(p, _)| *p == m.config.root) else {
            continue;
        };
        wait = wait.min(step(m, reading, v8, kernel, &mut stderr_taken, events));
    }
    publish_stalls(&work.monitors);
    wait
}
