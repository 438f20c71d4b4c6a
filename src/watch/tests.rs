use super::*;
use std::sync::atomic::{AtomicU32, Ordering};

// Fault injection, for these tests only: panic while reading, or while
// stepping a monitor, for one root path.
pub(crate) const PANIC_IN_READ: u32 = 1;
pub(crate) const PANIC_IN_STEP: u32 = 2;
static FAULTS: Mutex<Vec<(PathBuf, u32)>> = Mutex::new(Vec::new());

pub(crate) fn fault(root: &Path, what: u32) {
    let hit = FAULTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|(r, w)| r == root && w & what != 0);
    if hit {
        panic!("injected fault {what} for {}", root.display());
    }
}

fn set_faults(root: &Path, what: u32) {
    let mut f = FAULTS.lock().unwrap_or_else(|p| p.into_inner());
    f.retain(|(r, _)| r != root);
    if what != 0 {
        f.push((root.to_path_buf(), what));
    }
}

/// Collects events; panics on the first threshold event when asked.
struct TestSink {
    events: Arc<Mutex<Vec<Event>>>,
    panic_on_threshold: Arc<AtomicU32>,
}

impl Sink for TestSink {
    fn deliver(&self, e: Event) -> bool {
        if e.kind == EventKind::Threshold && self.panic_on_threshold.swap(0, Ordering::SeqCst) == 1
        {
            panic!("injected: the sink panics");
        }
        self.events.lock().unwrap().push(e);
        true
    }
}

/// A root of its own for one test: a symlink to a fixture tree.
fn private_root(fixture: &str, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("__test__/fixtures")
        .join(fixture);
    let dir = std::env::temp_dir().join(format!("oomguard-rs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    std::os::unix::fs::symlink(&src, &dir).unwrap();
    dir
}

fn wait_until(what: &str, ms: u64, f: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_millis(ms);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn config(thresholds: &[f64], root: &Path, path: Option<PathBuf>) -> Config {
    Config::new(Settings {
        thresholds: thresholds.to_vec(),
        hysteresis: 0.05f64.min(thresholds[0] / 2.0),
        min_interval_ms: 1.0,
        max_interval_ms: 20.0,
        last_words: Some(LastWordsConfig {
            stderr: false,
            path,
        }),
        root: root.to_path_buf(),
        stall: None,
        ..Settings::default()
    })
    .unwrap()
}

#[test]
fn config_new_refuses_what_the_sampler_cannot_work_with() {
    let ok = |t: &[f64], h: f64, min: f64, max: f64| {
        Config::new(Settings {
            thresholds: t.to_vec(),
            hysteresis: h,
            basis: Basis::Usage,
            min_interval_ms: min,
            max_interval_ms: max,
            last_words: None,
            stall: None,
            ..Settings::default()
        })
    };
    let bad: &[(&str, Result<Config, ConfigError>, &str)] = &[
        (
            "no thresholds",
            ok(&[], 0.0, 1.0, 10.0),
            "options.thresholds must be an array of 1 to 16",
        ),
        (
            "17 thresholds",
            ok(&[0.5; 17], 0.0, 1.0, 10.0),
            "got 17 entries",
        ),
        (
            "NaN",
            ok(&[f64::NAN], 0.0, 1.0, 10.0),
            "options.thresholds[0] must be a ratio between 0 and 1 (exclusive), got NaN",
        ),
        (
            "infinite",
            ok(&[0.5, f64::INFINITY], 0.0, 1.0, 10.0),
            "options.thresholds[1] must be a ratio",
        ),
        ("0", ok(&[0.0], 0.0, 1.0, 10.0), "options.thresholds[0]"),
        (
            "1",
            ok(&[0.5, 1.0], 0.0, 1.0, 10.0),
            "options.thresholds[1]",
        ),
        (
            "equal",
            ok(&[0.5, 0.5], 0.0, 1.0, 10.0),
            "options.thresholds[1] must be above",
        ),
        (
            "descending",
            ok(&[0.8, 0.9, 0.85], 0.0, 1.0, 10.0),
            "options.thresholds[2] must be above options.thresholds[1] (0.9)",
        ),
        (
            "hysteresis negative",
            ok(&[0.8], -0.1, 1.0, 10.0),
            "options.hysteresis must be a ratio from 0 to 0.5",
        ),
        (
            "hysteresis NaN",
            ok(&[0.8], f64::NAN, 1.0, 10.0),
            "options.hysteresis",
        ),
        (
            "hysteresis over 0.5",
            ok(&[0.8], 0.6, 1.0, 10.0),
            "options.hysteresis",
        ),
        (
            "hysteresis at the first threshold",
            ok(&[0.2], 0.2, 1.0, 10.0),
            "below the lowest threshold (0.2)",
        ),
        (
            "min interval too small",
            ok(&[0.8], 0.0, 0.01, 10.0),
            "options.minIntervalMs",
        ),
        (
            "min interval NaN",
            ok(&[0.8], 0.0, f64::NAN, 10.0),
            "options.minIntervalMs",
        ),
        (
            "max below min",
            ok(&[0.8], 0.0, 50.0, 10.0),
            "options.maxIntervalMs must be between minIntervalMs (50)",
        ),
        (
            "max too large",
            ok(&[0.8], 0.0, 1.0, 4e6),
            "options.maxIntervalMs",
        ),
        (
            "max infinite",
            ok(&[0.8], 0.0, 1.0, f64::INFINITY),
            "options.maxIntervalMs",
        ),
    ];
    for (name, r, want) in bad {
        match r {
            Err(e) => assert!(e.0.contains(want), "case {name}: {e}"),
            Ok(_) => panic!("case {name}: accepted"),
        }
    }
    let nul = Config::new(Settings {
        thresholds: vec![0.8],
        hysteresis: 0.0,
        last_words: Some(LastWordsConfig {
            stderr: false,
            path: Some("/tmp/a\0b".into()),
        }),
        ..Settings::default()
    });
    assert!(nul.unwrap_err().0.contains("options.lastWords.path"));
    // A directory, or a file in no directory, is refused as watch() refuses it.
    let dir = std::env::temp_dir();
    for (path, ok) in [
        (dir.clone(), false),
        (dir.join("oomguard-no-such-dir").join("lw"), false),
        (dir.join("oomguard-config-test-lw"), true),
    ] {
        let r = Config::new(Settings {
            last_words: Some(LastWordsConfig {
                stderr: false,
                path: Some(path.clone()),
            }),
            ..Settings::default()
        });
        assert_eq!(r.is_ok(), ok, "{path:?}: {:?}", r.err());
    }
    // The edges are accepted.
    let edges = ok(&[1e-9, 0.5, 1.0 - 1e-9], 0.0, 0.1, 3_600_000.0).unwrap();
    assert_eq!(edges.thresholds(), &[1e-9, 0.5, 1.0 - 1e-9]);
    assert!(ok(&[0.9], 0.5, 60_000.0, 60_000.0).is_ok());
    let sixteen: Vec<f64> = (1..=16).map(|i| i as f64 / 20.0).collect();
    assert!(ok(&sixteen, 0.0, 1.0, 1.0).is_ok());
}

#[test]
fn the_first_sample_is_taken_before_start_returns() {
    let sampler: &'static Sampler = Box::leak(Box::new(Sampler::new()));
    let root = private_root("v2-busy", "first");
    for _ in 0..20 {
        let (id, block) = sampler.start(1, config(&[0.9], &root, None)).unwrap();
        // At least start()'s own: the thread, woken by start (and by the
        // last stop), may have taken more by now, but not usually all
        // of them before start returns, every time.
        assert!(
            block.get(block::SAMPLES) >= 1.0,
            "a sample before start returned"
        );
        assert_eq!(block.get(block::LIMIT), 268435456.0);
        assert!(sampler.stop(id));
    }
    let _ = std::fs::remove_file(&root);
}

#[test]
fn a_panic_becomes_one_error_event_and_sampling_goes_on() {
    let sampler: &'static Sampler = Box::leak(Box::new(Sampler::new()));
    let events = Arc::new(Mutex::new(Vec::new()));
    let panic_sink = Arc::new(AtomicU32::new(0));
    sampler.add_sink(
        7,
        Box::new(TestSink {
            events: events.clone(),
            panic_on_threshold: panic_sink.clone(),
        }),
    );
    let root = private_root("v2-busy", "panic");
    let errors = |code: ErrorCode| {
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == EventKind::Error && e.code == Some(code))
            .count()
    };

    // A reader that panics, from the very first sample on.
    set_faults(&root, PANIC_IN_READ);
    let (id, block) = sampler.start(7, config(&[0.9], &root, None)).unwrap();
    assert_eq!(block.get(block::SAMPLES), 0.0);
    assert_eq!(
        block.get(block::FAILING),
        1.0,
        "the monitor says it has no numbers"
    );
    std::thread::sleep(Duration::from_millis(350)); // a few retries
    assert_eq!(
        errors(ErrorCode::Internal),
        1,
        "one error event, not one per pass"
    );
    let msg = events.lock().unwrap()[0].message.clone().unwrap();
    assert!(
        msg.contains("injected fault 1")
            && msg.contains("internal error (a bug in oomguard) in reading"),
        "{msg}"
    );
    assert!(sampler.info().running);

    // Fixed: sampling goes on.
    set_faults(&root, 0);
    wait_until("good samples", 2000, || block.get(block::SAMPLES) >= 3.0);
    assert_eq!(block.get(block::FAILING), 0.0);

    // A panic while stepping the monitor: one more error, then on again.
    set_faults(&root, PANIC_IN_STEP);
    wait_until("the step's error", 2000, || {
        errors(ErrorCode::Internal) == 2
    });
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(errors(ErrorCode::Internal), 2);
    set_faults(&root, 0);
    let n = block.get(block::SAMPLES);
    wait_until("samples after the step's panic", 2000, || {
        block.get(block::SAMPLES) >= n + 3.0
    });

    // A sink that panics: the event is lost, the thread is not.
    panic_sink.store(1, Ordering::SeqCst);
    let (id2, block2) = sampler.start(7, config(&[0.5], &root, None)).unwrap();
    assert_eq!(block2.get(block::LEVEL), 1.0, "v2-busy is at 0.515");
    let n = block.get(block::SAMPLES);
    wait_until("samples after the sink's panic", 2000, || {
        block.get(block::SAMPLES) >= n + 3.0
    });
    assert_eq!(panic_sink.load(Ordering::SeqCst), 0, "the sink did panic");
    assert!(sampler.info().running);

    sampler.stop(id);
    sampler.stop(id2);
    wait_until("the thread to exit", 2000, || !sampler.info().running);
    let _ = std::fs::remove_file(&root);
}

#[test]
fn flight_record_in_the_file_from_the_first_crossing() {
    let sampler: &'static Sampler = Box::leak(Box::new(Sampler::new()));
    let root = private_root("v2-busy", "flight");
    let dir = std::env::temp_dir().join(format!("oomguard-rs-{}-flight-out", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("termination-log");
    // 0.515 of the limit: at the first of two thresholds.
    let (id, _) = sampler
        .start(1, config(&[0.5, 0.9], &root, Some(file.clone())))
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.ends_with("}\n") && text.matches('\n').count() == 1,
        "{text}"
    );
    assert!(text.contains("\"level\":1,\"final\":false,\"event\":\"threshold\",\"thresholds\":[0.5,0.9],\"seq\":1"), "{text}");
    assert!(text.contains("\"threshold\":0.5,"), "{text}");
    // Closed above a threshold: the record stays.
    sampler.stop(id);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    // Closed below every threshold, after writing: emptied.
    let slow = Config::new(Settings {
        thresholds: vec![0.5, 0.9],
        min_interval_ms: 60_000.0,
        max_interval_ms: 60_000.0,
        last_words: Some(LastWordsConfig {
            stderr: false,
            path: Some(file.clone()),
        }),
        root: root.clone(),
        stall: None,
        ..Settings::default()
    })
    .unwrap();
    let (id, block) = sampler.start(1, slow).unwrap();
    assert_eq!(block.get(block::LEVEL), 1.0);
    wait_until("the thread's first pass", 2000, || {
        block.get(block::SAMPLES) >= 2.0
    });
    {
        // As if it had recovered (the fixture cannot move).
        sampler.lock().monitors[0].state().level = 0;
    }
    sampler.stop(id);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&root);
}

#[test]
fn levels_with_hysteresis() {
    let t = [0.8, 0.9, 0.95];
    let cases: &[(&str, usize, f64, usize)] = &[
        ("below all", 0, 0.5, 0),
        ("first", 0, 0.8, 1),
        ("jump to top", 0, 0.97, 3),
        ("stay inside hysteresis", 1, 0.76, 1),
        ("recover below threshold - hysteresis", 1, 0.74, 0),
        ("fall two levels", 3, 0.8, 1),
        ("fall all the way", 3, 0.1, 0),
        ("NaN keeps level", 2, f64::NAN, 2),
        ("above 1", 2, 1.2, 3),
    ];
    for (name, cur, ratio, want) in cases {
        assert_eq!(next_level(*cur, *ratio, &t, 0.05), *want, "case {name}");
    }
}

#[test]
fn growth_follows_a_steady_leak() {
    let mut g = Growth::default();
    let t0 = Instant::now();
    let mib = 1024.0 * 1024.0;
    let mut rate = 0.0;
    for i in 0..=100 {
        rate = g.observe(t0 + Duration::from_millis(i * 20), i as f64 * 0.2 * mib);
    }
    assert!((rate - 10.0 * mib).abs() < 0.01 * 10.0 * mib, "rate {rate}");
    assert_eq!(time_to_limit_ms(100.0 * mib, 10.0 * mib), Some(10000.0));
    let ttl = time_to_limit_ms(100.0 * mib, rate).unwrap();
    assert!((ttl - 10000.0).abs() < 100.0, "{ttl}");
    assert_eq!(time_to_limit_ms(100.0 * mib, 0.0), None);
    assert_eq!(time_to_limit_ms(100.0 * mib, -5.0 * mib), None);
}

#[test]
fn limit_change_verdicts() {
    use crate::locate::{CgroupVersion, Location};
    let mib = 1024.0 * 1024.0;
    let snap = |limit: Option<u64>| Snapshot {
        location: Some(Location {
            version: CgroupVersion::V1,
            cgroup_path: "/x".into(),
            mount_point: "/sys/fs/cgroup/memory".into(),
            dir: "/sys/fs/cgroup/memory/x".into(),
            resolved: true,
        }),
        cgroup_limit: limit,
        mem_total: Some(1 << 34),
        ..Snapshot::default()
    };
    // Node 20's default heap limit in a 256 MiB container is 259 MiB.
    let heap = Some(259.0 * mib);
    type Case = (
        &'static str,
        Option<u64>,
        LimitSource,
        Option<f64>,
        Option<&'static str>,
    );
    let cases: &[Case] = &[
        (
            "grown to 300 MiB",
            Some(300 << 20),
            LimitSource::CgroupV1,
            heap,
            Some("near"),
        ),
        (
            "grown to 512 MiB",
            Some(512 << 20),
            LimitSource::CgroupV1,
            heap,
            Some("fits"),
        ),
        (
            "shrunk to 200 MiB",
            Some(200 << 20),
            LimitSource::CgroupV1,
            heap,
            Some("above"),
        ),
        (
            "no heap number",
            Some(200 << 20),
            LimitSource::CgroupV1,
            None,
            None,
        ),
        (
            "limit removed: the host's",
            None,
            LimitSource::Host,
            heap,
            None,
        ),
    ];
    for (name, limit, source, heap, want) in cases {
        let c = limit_change(&snap(*limit), 256.0 * mib, *source, *heap);
        assert_eq!(c.heap_limit, *want, "case {name}");
        assert_eq!(c.previous_limit_bytes, 256.0 * mib);
        let code = c.diagnosis.as_ref().map(|d| d.code);
        let want_code = match *want {
            Some("above") => Some(diagnose::codes::HEAP_LIMIT_ABOVE_CONTAINER_LIMIT),
            Some("near") => Some(diagnose::codes::HEAP_LIMIT_NEAR_CONTAINER_LIMIT),
            _ => None,
        };
        assert_eq!(code, want_code, "case {name}");
    }
}

#[test]
fn interval_shrinks_near_the_threshold() {
    let min = Duration::from_millis(1);
    let max = Duration::from_millis(1000);
    let mib = 1024.0 * 1024.0;
    assert_eq!(interval_for(0.0, 0.0, min, max), min);
    assert_eq!(interval_for(1e12, 0.0, min, max), max);
    let far = interval_for(180.0 * mib, 0.0, min, max);
    let near = interval_for(10.0 * mib, 0.0, min, max);
    assert!(far > near && near >= min, "{far:?} {near:?}");
    // A fast measured rate shortens it further.
    assert!(interval_for(180.0 * mib, 4096.0 * mib, min, max) < far);
    // 180 MiB at 2 GiB/s: 87.9 ms.
    let ms = far.as_secs_f64() * 1000.0;
    assert!((ms - 180.0 / 2048.0 * 1000.0).abs() < 0.01, "{ms}");
}

/// Under a parent's limit, other cgroups' memory can fill it while this
/// cgroup's usage stays low: with stall detection, no sample may be the
/// usage alone while the parent's usage is in the stall zone.
#[test]
fn no_quiet_while_a_limiting_parent_is_in_the_stall_zone() {
    use crate::locate::{CgroupVersion, Location};
    use crate::reader::LimitingCgroup;
    let mib = 1u64 << 20;
    let limit = 256 * mib;
    let root = Path::new("/");
    let mut cfg = config(&[0.8, 0.9], root, None);
    cfg.last_words = None;
    let mut stalls = cfg.clone();
    stalls.stall = Some(stall::StallConfig::default());
    let snap = |parent_usage: Option<u64>| Snapshot {
        location: Some(Location {
            version: CgroupVersion::V1,
            cgroup_path: "/pod/app".into(),
            mount_point: "/sys/fs/cgroup/memory".into(),
            dir: "/sys/fs/cgroup/memory/pod/app".into(),
            resolved: true,
        }),
        cgroup_limit: Some(limit),
        usage: Some(40 * mib),
        working_set: Some(30 * mib),
        limiting: Some(LimitingCgroup {
            path: "/pod".into(),
            depth: 1,
            usage: parent_usage,
            ..LimitingCgroup::default()
        }),
        ..Snapshot::default()
    };
    let st = MonitorState {
        stall: Some(stall::Detector::new(stall::StallConfig::default())),
        ..MonitorState::default()
    };
    let cases = [
        ("parent far from its limit", Some(100 * mib), true),
        ("parent in the stall zone", Some(250 * mib), false),
        ("parent usage unknown", None, false),
    ];
    for (name, usage, quiet_ok) in cases {
        let q = quiet(&stalls, &st, 0, limit, &snap(usage));
        assert_eq!(q.is_some(), quiet_ok, "{name}: {q:?}");
        // Without stall detection the parent does not matter.
        let plain = MonitorState::default();
        assert!(
            quiet(&cfg, &plain, 0, limit, &snap(usage)).is_some(),
            "{name}"
        );
    }
}

#[test]
fn the_declared_defaults_pass_and_every_declared_basis_parses() {
    // lib/core/options.json's defaults are a configuration Config::new accepts.
    let c = Config::new(Settings::default()).unwrap();
    assert_eq!(c.thresholds(), crate::options::THRESHOLDS_DEFAULT);
    for v in crate::options::BASIS_VALUES {
        assert_eq!(Basis::parse(v).map(Basis::as_str), Some(*v));
    }
    assert_eq!(Basis::parse("nope"), None);
}
