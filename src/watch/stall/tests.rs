use super::*;

const MIB: f64 = 1048576.0;
const LIMIT: f64 = 256.0 * MIB;

/// Per-second rates a scenario runs at: working set (MiB), failures,
/// pressure share, refaults.
#[derive(Clone, Copy)]
struct Rates {
    ws_mib: f64,
    fail: f64,
    psi: Option<f64>,
    refault: Option<f64>,
    /// v1 memory+swap usage / its limit (the limit set equal to LIMIT).
    memsw: Option<f64>,
}

/// Feed readings every `step_ms` for `ms` with these rates, continuing
/// the counters from `state`; returns the transitions with their times.
struct Sim {
    d: Detector,
    t: f64,
    fail: f64,
    psi_us: f64,
    refault: f64,
    counter: Counter,
    scope: PressureScope,
    out: Vec<(f64, Transition)>,
}

impl Sim {
    fn new(cfg: StallConfig, counter: Counter) -> Sim {
        Sim {
            d: Detector::new(cfg),
            t: 0.0,
            fail: 0.0,
            psi_us: 0.0,
            refault: 0.0,
            counter,
            scope: match counter {
                Counter::Failcnt => PressureScope::System,
                Counter::EventsMax => PressureScope::Cgroup,
            },
            out: Vec::new(),
        }
    }

    fn run(&mut self, ms: f64, step_ms: f64, r: Rates) -> &mut Self {
        let end = self.t + ms;
        while self.t < end {
            self.t += step_ms;
            self.fail += r.fail * step_ms / 1000.0;
            self.psi_us += r.psi.unwrap_or(0.0) * step_ms * 1000.0;
            self.refault += r.refault.unwrap_or(0.0) * step_ms / 1000.0;
            let reading = Observation {
                t_ms: self.t,
                working_set: Some(r.ws_mib * MIB),
                limit: Some(LIMIT),
                failures: Some((self.counter, self.fail as u64)),
                pressure: r.psi.map(|_| PressureReading {
                    scope: self.scope,
                    kind: PsiKind::Some,
                    total_us: self.psi_us as u64,
                    avg10: 0.0,
                }),
                refaults: r.refault.map(|_| self.refault as u64),
                memsw: r.memsw.map(|m| (m * LIMIT, LIMIT)),
                depth: 0,
            };
            if let Some(tr) = self.d.feed(reading) {
                self.out.push((self.t, tr));
            }
        }
        self
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.out
            .iter()
            .map(|(_, t)| match t {
                Transition::Started(_) => "started",
                Transition::Ended(_) => "ended",
            })
            .collect()
    }
}

// Measured on cgroup v1, 256 MiB, node from an uncached copy (see the
// README): working set 243-249 MiB, failcnt 100k-330k/s, system PSI
// some 10-80%, refaults 110k-330k/s.
const V1_STALL: Rates = Rates {
    ws_mib: 246.0,
    fail: 150_000.0,
    psi: Some(0.2),
    refault: Some(160_000.0),
    memsw: None,
};
// The page-cache scenario at the limit: usage 100% but working set
// 34 MiB, failcnt 1-3k/s, refaults 340k/s.
const V1_PAGECACHE: Rates = Rates {
    ws_mib: 34.0,
    fail: 2600.0,
    psi: Some(0.08),
    refault: Some(340_000.0),
    memsw: None,
};
const CALM: Rates = Rates {
    ws_mib: 100.0,
    fail: 0.0,
    psi: Some(0.0),
    refault: Some(0.0),
    memsw: None,
};
// Measured on cgroup v1, 256 MiB, memory.memsw.limit_in_bytes equal to
// the limit, node from an uncached copy (6 runs, 250 ms windows): working
// set 244-249 MiB, memory+swap at its limit, memory.failcnt and
// memory.memsw.failcnt 0, refaults 93k-410k/s (10th percentile over
// 106k/s), system PSI some 18-61%.
const V1_MEMSW_STALL: Rates = Rates {
    ws_mib: 247.0,
    fail: 0.0,
    psi: Some(0.3),
    refault: Some(200_000.0),
    memsw: Some(0.999),
};

#[test]
fn a_gap_without_readings_does_not_backdate_a_stall() {
    // Snapshots every 2 s while calm (samples of the usage alone between
    // them), then a stall from t = 2050 ms, fed every 50 ms.
    let started = |gap: bool| {
        let cfg = StallConfig {
            sustain_ms: 3000.0,
            ..StallConfig::default()
        };
        let mut s = Sim::new(cfg, Counter::Failcnt);
        s.run(50.0, 50.0, CALM);
        s.t += 2000.0;
        if gap {
            s.d.gap();
        }
        s.run(6000.0, 50.0, V1_STALL);
        s.out
            .iter()
            .find(|(_, t)| matches!(t, Transition::Started(_)))
            .map(|(t, _)| *t)
            .unwrap()
    };
    // Without the gap the first window reaches back to t = 50 ms.
    assert!(started(false) < 2050.0 + 3000.0);
    let t = started(true);
    assert!(
        (2050.0 + 3000.0..=2050.0 + 3000.0 + 2.0 * WINDOW_MS).contains(&t),
        "{t}"
    );
}

#[test]
fn window_judgement() {
    let cfg = StallConfig::default();
    let stall = Figures {
        duration_ms: 0.0,
        window_ms: 500.0,
        ratio: Some(0.96),
        failures_per_sec: Some(150_000.0),
        counter: Some(Counter::Failcnt),
        pressure: Some(PressureFigure {
            scope: PressureScope::System,
            kind: PsiKind::Some,
            ratio: 0.2,
            avg10: 0.1,
        }),
        refaults_per_sec: Some(160_000.0),
        memsw_ratio: None,
        decided_by: None,
    };
    let cases: &[(&str, Figures, bool)] = &[
        ("measured v1 stall", stall, true),
        (
            "page cache: working set low",
            Figures {
                ratio: Some(0.13),
                ..stall
            },
            false,
        ),
        (
            "just inside the margin",
            Figures {
                ratio: Some(0.9),
                ..stall
            },
            true,
        ),
        (
            "just outside the margin",
            Figures {
                ratio: Some(0.89),
                ..stall
            },
            false,
        ),
        (
            "few v1 failures",
            Figures {
                failures_per_sec: Some(500.0),
                ..stall
            },
            false,
        ),
        (
            "v2 events max at a stall's rate",
            Figures {
                failures_per_sec: Some(1500.0),
                counter: Some(Counter::EventsMax),
                ..stall
            },
            true,
        ),
        (
            "v2 events max rarely",
            Figures {
                failures_per_sec: Some(20.0),
                counter: Some(Counter::EventsMax),
                ..stall
            },
            false,
        ),
        (
            "no failure counter",
            Figures {
                failures_per_sec: None,
                counter: None,
                ..stall
            },
            false,
        ),
        (
            "no pressure figures (PSI off)",
            Figures {
                pressure: None,
                ..stall
            },
            true,
        ),
        (
            "no pressure, but refaults (measured: system PSI 0 in a stall)",
            Figures {
                pressure: Some(PressureFigure {
                    ratio: 0.0,
                    ..stall.pressure.unwrap()
                }),
                ..stall
            },
            true,
        ),
        (
            "little pressure, no refault counters",
            Figures {
                pressure: Some(PressureFigure {
                    ratio: 0.01,
                    ..stall.pressure.unwrap()
                }),
                refaults_per_sec: None,
                ..stall
            },
            false,
        ),
        (
            "neither pressure nor refaults known (PSI off, old kernel)",
            Figures {
                pressure: None,
                refaults_per_sec: None,
                ..stall
            },
            true,
        ),
        (
            "no refault counters (old kernel)",
            Figures {
                refaults_per_sec: None,
                ..stall
            },
            true,
        ),
        (
            "pressure, nothing comes back",
            Figures {
                refaults_per_sec: Some(10.0),
                ..stall
            },
            true,
        ),
        (
            "neither pressure nor refaults",
            Figures {
                pressure: Some(PressureFigure {
                    ratio: 0.01,
                    ..stall.pressure.unwrap()
                }),
                refaults_per_sec: Some(10.0),
                ..stall
            },
            false,
        ),
        (
            "no limit",
            Figures {
                ratio: None,
                ..stall
            },
            false,
        ),
    ];
    for (name, f, want) in cases {
        assert_eq!(f.stalling(&cfg), *want, "case {name}");
    }
}

#[test]
fn a_sustained_stall_starts_after_sustain_and_ends_after_clear() {
    let cfg = StallConfig {
        margin: 0.1,
        sustain_ms: 2000.0,
    };
    let mut s = Sim::new(cfg, Counter::Failcnt);
    s.run(2000.0, 5.0, CALM);
    assert!(s.out.is_empty());
    s.run(10_000.0, 5.0, V1_STALL);
    assert_eq!(s.kinds(), ["started"]);
    let (t, Transition::Started(f)) = s.out[0] else {
        unreachable!()
    };
    // The first stalling window opens at 2000 ms: declared one sustain
    // (and at most one window) later.
    assert!(
        (4000.0 - WINDOW_MS..=4000.0 + WINDOW_MS + 5.0).contains(&t),
        "started at {t}"
    );
    assert!(f.duration_ms >= 2000.0, "{f:?}");
    assert_eq!(f.counter, Some(Counter::Failcnt));
    assert!(
        (f.failures_per_sec.unwrap() - 150_000.0).abs() < 1000.0,
        "{f:?}"
    );
    assert!((f.pressure.unwrap().ratio - 0.2).abs() < 0.01, "{f:?}");
    assert!(s.d.stalled());
    let d = s.d.duration_ms(s.t).unwrap();
    assert!((d - 10_000.0).abs() <= WINDOW_MS + 5.0, "lasted {d}");

    s.run(3000.0, 5.0, CALM);
    assert_eq!(s.kinds(), ["started", "ended"]);
    let (t_end, Transition::Ended(f)) = s.out[1] else {
        unreachable!()
    };
    assert!(
        (t_end - 12_000.0 - CLEAR_MS).abs() <= 2.0 * WINDOW_MS,
        "ended at {t_end}"
    );
    assert!((f.duration_ms - 10_000.0).abs() <= WINDOW_MS + 5.0, "{f:?}");
    assert!(!s.d.stalled());
    let secs = s.d.stalled_seconds();
    assert!((secs - 10.0).abs() <= 0.3, "stalled seconds {secs}");
}

#[test]
fn no_stall_for_page_cache_bursts_or_calm() {
    let cfg = StallConfig {
        margin: 0.1,
        sustain_ms: 2000.0,
    };
    // name, counter, phases (ms, rates)
    type Case = (&'static str, Counter, &'static [(f64, Rates)]);
    let cases: &[Case] = &[
        (
            "page cache at the limit, 60 s",
            Counter::Failcnt,
            &[(60_000.0, V1_PAGECACHE)],
        ),
        (
            "a 1.5 s burst, reclaimed",
            Counter::Failcnt,
            &[(1000.0, CALM), (1500.0, V1_STALL), (5000.0, CALM)],
        ),
        (
            "bursts shorter than sustain, with calm spells longer than the grace",
            Counter::Failcnt,
            &[
                (1500.0, V1_STALL),
                (1000.0, CALM),
                (1500.0, V1_STALL),
                (1000.0, CALM),
                (1500.0, V1_STALL),
                (1000.0, CALM),
            ],
        ),
        (
            "at the limit, failing, but neither pressure nor refaults",
            Counter::Failcnt,
            &[(
                10_000.0,
                Rates {
                    psi: Some(0.0),
                    refault: Some(0.0),
                    ..V1_STALL
                },
            )],
        ),
        ("calm", Counter::EventsMax, &[(10_000.0, CALM)]),
    ];
    for (name, counter, phases) in cases {
        let mut s = Sim::new(cfg, *counter);
        for (ms, r) in *phases {
            s.run(*ms, 5.0, *r);
        }
        assert!(s.out.is_empty(), "case {name}: {:?}", s.out);
        assert_eq!(s.d.stalled_seconds(), 0.0, "case {name}");
    }
}

#[test]
fn a_short_dip_while_suspected_does_not_start_the_count_again() {
    let cfg = StallConfig {
        margin: 0.1,
        sustain_ms: 2000.0,
    };
    let mut s = Sim::new(cfg, Counter::Failcnt);
    s.run(1500.0, 5.0, V1_STALL);
    s.run(300.0, 5.0, CALM);
    s.run(1000.0, 5.0, V1_STALL);
    assert_eq!(
        s.kinds(),
        ["started"],
        "a dip shorter than GRACE_MS: {:?}",
        s.d
    );
    let (t, Transition::Started(f)) = s.out[0] else {
        unreachable!()
    };
    assert!(
        t <= 2000.0 + 2.0 * WINDOW_MS,
        "started at {t}: counted from the first window"
    );
    assert!(f.duration_ms >= 2000.0, "{f:?}");
}

#[test]
fn one_calm_window_does_not_end_a_stall_and_the_action_fires_once() {
    let cfg = StallConfig {
        margin: 0.1,
        sustain_ms: 1000.0,
    };
    let mut s = Sim::new(cfg, Counter::EventsMax);
    let v2 = Rates {
        fail: 1500.0,
        ..V1_STALL
    };
    s.run(3000.0, 50.0, v2);
    assert_eq!(s.kinds(), ["started"]);
    assert!(!s.d.action_due(5000.0, s.t), "not yet");
    s.run(400.0, 50.0, CALM);
    s.run(3000.0, 50.0, v2);
    assert_eq!(
        s.kinds(),
        ["started"],
        "a short calm spell is part of the stall"
    );
    assert!(
        s.d.action_due(5000.0, s.t),
        "lasted {:?}",
        s.d.duration_ms(s.t)
    );
    assert!(!s.d.action_due(5000.0, s.t + 1000.0), "once per stall");
}

#[test]
fn slow_and_irregular_sampling() {
    // The sampler may sleep seconds between readings, or sample every
    // millisecond; windows are judged on what was fed.
    let cfg = StallConfig {
        margin: 0.1,
        sustain_ms: 3000.0,
    };
    for step in [1.0, 7.0, 100.0, 1000.0, 5000.0] {
        let mut s = Sim::new(cfg, Counter::Failcnt);
        s.run(20_000.0, step, V1_STALL);
        assert_eq!(s.kinds(), ["started"], "step {step}");
        let t = s.out[0].0;
        assert!(
            t <= 3000.0 + 2.0 * step.max(WINDOW_MS),
            "step {step}: started at {t}"
        );
    }
}

#[test]
fn counters_going_backwards_give_no_rate() {
    let a = Observation {
        t_ms: 0.0,
        working_set: Some(250.0 * MIB),
        limit: Some(LIMIT),
        failures: Some((Counter::Failcnt, 1_000_000)),
        pressure: None,
        refaults: Some(5000),
        memsw: None,
        depth: 0,
    };
    let b = Observation {
        t_ms: 500.0,
        failures: Some((Counter::Failcnt, 10)),
        refaults: Some(10),
        ..a
    };
    let f = figures(&a, &b, 500.0);
    assert_eq!(f.failures_per_sec, None);
    assert_eq!(f.refaults_per_sec, None);
    assert!(!f.stalling(&StallConfig::default()));
    // Time going backwards resets the window.
    let mut d = Detector::new(StallConfig::default());
    assert_eq!(d.feed(b), None);
    assert_eq!(d.feed(Observation { t_ms: 100.0, ..a }), None);
    assert_eq!(d.last(), None);
}

#[test]
fn json_and_reason() {
    let f = Figures {
        duration_ms: 3120.4,
        window_ms: 250.0,
        ratio: Some(0.96312),
        failures_per_sec: Some(150_000.2),
        counter: Some(Counter::Failcnt),
        pressure: Some(PressureFigure {
            scope: PressureScope::System,
            kind: PsiKind::Some,
            ratio: 0.25,
            avg10: 0.1336,
        }),
        refaults_per_sec: None,
        memsw_ratio: None,
        decided_by: Some(Evidence::ChargeFailures),
    };
    assert_eq!(
        json(&f, Some(EXIT_CODE), None),
        "{\"durationMs\":3120,\"failuresPerSec\":150000,\
         \"failureCounter\":\"memory.failcnt\",\"limitingCgroup\":null,\
         \"pressure\":{\"scope\":\"system\",\"kind\":\"some\",\"ratio\":0.2500,\"avg10\":0.1336},\"refaultsPerSec\":null,\"decidedBy\":\"charge-failures\",\
         \"action\":\"exit\",\"exitCode\":75}"
    );
    assert!(json(&Figures::default(), None, None).ends_with("\"action\":null,\"exitCode\":null}"));
    assert_eq!(
        reason(&f, "the V8 heap (206 MiB) is most of the anonymous memory (222 MiB)", None),
        "stuck at the limit for 3.1 s without an OOM kill: 150000 failed charges/s (memory.failcnt), \
         system-wide memory pressure some 25%; the V8 heap (206 MiB) is most of the anonymous memory (222 MiB)"
    );
    // Decided by refaults (memory+swap binding): the failure rate is
    // unknown, said so, and not printed as 0.
    let m = Figures {
        failures_per_sec: None,
        refaults_per_sec: Some(201_234.4),
        memsw_ratio: Some(0.999),
        decided_by: Some(Evidence::Refaults),
        ..f
    };
    let j = json(&m, None, None);
    assert!(
        j.contains("\"failuresPerSec\":null,\"failureCounter\":\"memory.failcnt\""),
        "{j}"
    );
    assert!(
        j.contains("\"refaultsPerSec\":201234,\"decidedBy\":\"refaults\""),
        "{j}"
    );
    assert_eq!(
        reason(&m, "the V8 heap (206 MiB) is most of the anonymous memory (222 MiB)", None),
        "stuck at the limit for 3.1 s without an OOM kill: 201234 refaults/s at the memory+swap limit \
         (whose failed charges the kernel does not count), system-wide memory pressure some 25%; \
         the V8 heap (206 MiB) is most of the anonymous memory (222 MiB)"
    );
    assert!(json(&Figures::default(), None, None).contains("\"decidedBy\":null"));
}

#[test]
fn window_judgement_where_memory_and_swap_bind() {
    let cfg = StallConfig::default();
    // A window of a measured stall with memory.memsw.limit_in_bytes ==
    // memory.limit_in_bytes: no failed charge counted.
    let stall = Figures {
        duration_ms: 0.0,
        window_ms: 250.0,
        ratio: Some(0.966),
        failures_per_sec: Some(0.0),
        counter: Some(Counter::Failcnt),
        pressure: Some(PressureFigure {
            scope: PressureScope::System,
            kind: PsiKind::Some,
            ratio: 0.3,
            avg10: 0.3,
        }),
        refaults_per_sec: Some(200_000.0),
        memsw_ratio: Some(0.999),
        decided_by: None,
    };
    let no_psi = PressureFigure {
        ratio: 0.0,
        ..stall.pressure.unwrap()
    };
    let cases: &[(&str, Figures, Option<Evidence>)] = &[
        ("measured memsw stall", stall, Some(Evidence::Refaults)),
        (
            "system PSI 0: refaults alone decide",
            Figures {
                pressure: Some(no_psi),
                ..stall
            },
            Some(Evidence::Refaults),
        ),
        (
            "PSI off",
            Figures {
                pressure: None,
                ..stall
            },
            Some(Evidence::Refaults),
        ),
        (
            "at the strict refault threshold",
            Figures {
                refaults_per_sec: Some(MEMSW_MIN_REFAULTS_PER_SEC),
                ..stall
            },
            Some(Evidence::Refaults),
        ),
        (
            "refaults above the usual threshold, below the strict one",
            Figures {
                refaults_per_sec: Some(MEMSW_MIN_REFAULTS_PER_SEC - 1.0),
                ..stall
            },
            None,
        ),
        (
            "refaults not known (old kernel): the pressure alone does not decide",
            Figures {
                refaults_per_sec: None,
                pressure: Some(PressureFigure {
                    ratio: 0.9,
                    ..stall.pressure.unwrap()
                }),
                ..stall
            },
            None,
        ),
        (
            "page cache under the same limit: working set low",
            Figures {
                ratio: Some(0.13),
                refaults_per_sec: Some(340_000.0),
                ..stall
            },
            None,
        ),
        (
            "working set just outside the margin",
            Figures {
                ratio: Some(0.89),
                ..stall
            },
            None,
        ),
        (
            "memory+swap within the margin of its limit",
            Figures {
                memsw_ratio: Some(0.9),
                ..stall
            },
            Some(Evidence::Refaults),
        ),
        (
            "a memory+swap limit that does not bind (swap free): as without one",
            Figures {
                memsw_ratio: Some(0.5),
                ..stall
            },
            None,
        ),
        (
            "no memory+swap limit (or no swap accounting)",
            Figures {
                memsw_ratio: None,
                ..stall
            },
            None,
        ),
        (
            "both limits reached and failcnt counting: the charge-failure rule",
            Figures {
                failures_per_sec: Some(150_000.0),
                ..stall
            },
            Some(Evidence::ChargeFailures),
        ),
        (
            "failcnt counting a little: refaults decide",
            Figures {
                failures_per_sec: Some(500.0),
                ..stall
            },
            Some(Evidence::Refaults),
        ),
        (
            "no limit",
            Figures {
                ratio: None,
                ..stall
            },
            None,
        ),
    ];
    for (name, f, want) in cases {
        assert_eq!(f.judge(&cfg), *want, "case {name}");
        assert_eq!(f.stalling(&cfg), want.is_some(), "case {name}");
        let j = f.judged(&cfg);
        assert_eq!(j.decided_by, *want, "case {name}");
        let rate = match want {
            Some(Evidence::Refaults) => None,
            _ => f.failures_per_sec,
        };
        assert_eq!(
            j.failures_per_sec, rate,
            "case {name}: the failure rate as reported"
        );
    }
    // Without a memory+swap figure every earlier case judges as before:
    // the charge-failure rule or nothing.
    for f in [
        stall,
        Figures {
            failures_per_sec: Some(150_000.0),
            ..stall
        },
    ] {
        let v1 = Figures {
            memsw_ratio: None,
            ..f
        };
        assert_ne!(v1.judge(&cfg), Some(Evidence::Refaults));
    }
}

#[test]
fn memory_and_swap_binding_stall_from_refaults_but_not_page_cache_or_bursts() {
    let cfg = StallConfig {
        margin: 0.1,
        sustain_ms: 2000.0,
    };
    let mut s = Sim::new(cfg, Counter::Failcnt);
    s.run(2000.0, 5.0, CALM);
    s.run(10_000.0, 5.0, V1_MEMSW_STALL);
    assert_eq!(s.kinds(), ["started"]);
    let (t, Transition::Started(f)) = s.out[0] else {
        unreachable!()
    };
    assert!(
        (4000.0 - WINDOW_MS..=4000.0 + WINDOW_MS + 5.0).contains(&t),
        "started at {t}"
    );
    assert_eq!(f.decided_by, Some(Evidence::Refaults));
    assert_eq!(f.failures_per_sec, None, "unknown, not 0");
    assert_eq!(f.counter, Some(Counter::Failcnt));
    assert!(
        (f.refaults_per_sec.unwrap() - 200_000.0).abs() < 2000.0,
        "{f:?}"
    );
    s.run(
        3000.0,
        5.0,
        Rates {
            memsw: Some(0.5),
            ..CALM
        },
    );
    assert_eq!(s.kinds(), ["started", "ended"]);

    let memsw = |r: Rates| Rates {
        memsw: Some(0.999),
        ..r
    };
    type Case = (&'static str, &'static [(f64, Rates)]);
    let cases: &[Case] = &[
        (
            "page cache at the limit, 60 s",
            &[(
                60_000.0,
                Rates {
                    fail: 0.0,
                    memsw: Some(1.0),
                    ..V1_PAGECACHE
                },
            )],
        ),
        (
            "a 1.5 s burst",
            &[(1000.0, CALM), (1500.0, V1_MEMSW_STALL), (5000.0, CALM)],
        ),
        (
            "bursts shorter than sustain, calm spells longer than the grace",
            &[
                (1500.0, V1_MEMSW_STALL),
                (1000.0, CALM),
                (1500.0, V1_MEMSW_STALL),
                (1000.0, CALM),
            ],
        ),
        (
            "at both limits with refaults below the strict threshold",
            &[(
                20_000.0,
                Rates {
                    refault: Some(15_000.0),
                    ..V1_MEMSW_STALL
                },
            )],
        ),
        (
            "the same stall's rates without a binding memory+swap limit",
            &[(
                20_000.0,
                Rates {
                    memsw: Some(0.5),
                    ..V1_MEMSW_STALL
                },
            )],
        ),
        (
            "no refault counters",
            &[(
                20_000.0,
                Rates {
                    refault: None,
                    ..V1_MEMSW_STALL
                },
            )],
        ),
    ];
    for (name, phases) in cases {
        let mut s = Sim::new(cfg, Counter::Failcnt);
        for (ms, r) in *phases {
            let r = if r.memsw.is_none() { memsw(*r) } else { *r };
            s.run(*ms, 5.0, r);
        }
        assert!(s.out.is_empty(), "case {name}: {:?}", s.out);
        assert_eq!(s.d.stalled_seconds(), 0.0, "case {name}");
    }
}

#[test]
fn readings_from_snapshots() {
    use crate::locate::Location;
    use crate::parse::{Pressure, PressureLine};
    use crate::reader::Events;
    use crate::stat::MemoryStat;
    let line = |total_us| PressureLine {
        avg10: 12.5,
        avg60: 0.0,
        avg300: 0.0,
        total_us,
    };
    let mk = |version| Snapshot {
        location: Some(Location {
            version,
            cgroup_path: "/x".into(),
            mount_point: "/sys/fs/cgroup".into(),
            dir: "/sys/fs/cgroup/x".into(),
            resolved: true,
        }),
        cgroup_limit: Some(1 << 28),
        working_set: Some(1 << 27),
        events: Some(Events {
            max: Some(7),
            failcnt: Some(9),
            ..Events::default()
        }),
        stat: Some(MemoryStat {
            workingset_refault: Some(11),
            ..MemoryStat::default()
        }),
        ..Snapshot::default()
    };
    let mut v1 = mk(CgroupVersion::V1);
    v1.pressure = Some((
        Pressure {
            some: line(100),
            full: Some(line(50)),
        },
        PressureScope::System,
    ));
    let r = Observation::from_snapshot(&v1, 1.0);
    assert_eq!(r.memsw, None, "no swap accounting: no memory+swap figure");
    let mut v1_memsw = mk(CgroupVersion::V1);
    v1_memsw.usage = Some(200 << 20);
    v1_memsw.swap = Some(1 << 20);
    v1_memsw.stat.as_mut().unwrap().hierarchical_memsw_limit = Some(1 << 28);
    assert_eq!(
        Observation::from_snapshot(&v1_memsw, 1.0).memsw,
        Some((201.0 * 1048576.0, (1u64 << 28) as f64)),
        "memory+swap usage and limit"
    );
    v1_memsw.stat.as_mut().unwrap().hierarchical_memsw_limit = None;
    assert_eq!(
        Observation::from_snapshot(&v1_memsw, 1.0).memsw,
        None,
        "memsw unlimited"
    );
    assert_eq!(r.failures, Some((Counter::Failcnt, 9)));
    assert_eq!(r.limit, Some((1u64 << 28) as f64));
    assert_eq!(r.refaults, Some(11));
    let p = r.pressure.unwrap();
    assert_eq!(
        (p.scope, p.kind, p.total_us),
        (PressureScope::System, PsiKind::Some, 100),
        "v1: system-wide some"
    );

    let mut v2 = mk(CgroupVersion::V2);
    v2.pressure = Some((
        Pressure {
            some: line(100),
            full: Some(line(50)),
        },
        PressureScope::Cgroup,
    ));
    v2.usage = Some(200 << 20);
    v2.swap = Some(1 << 20);
    v2.stat.as_mut().unwrap().hierarchical_memsw_limit = Some(1 << 28);
    let r = Observation::from_snapshot(&v2, 1.0);
    assert_eq!(r.memsw, None, "v2: no memory+swap counter");
    assert_eq!(r.failures, Some((Counter::EventsMax, 7)));
    let p = r.pressure.unwrap();
    assert_eq!(
        (p.scope, p.kind, p.total_us),
        (PressureScope::Cgroup, PsiKind::Full, 50),
        "v2: the cgroup's full"
    );

    let mut broken = mk(CgroupVersion::V2);
    broken.failed.limit = true;
    assert_eq!(
        Observation::from_snapshot(&broken, 1.0).limit,
        None,
        "a failed limit read is no limit"
    );
    let host = Snapshot {
        mem_total: Some(1 << 30),
        ..Snapshot::default()
    };
    let r = Observation::from_snapshot(&host, 1.0);
    assert_eq!(
        (r.limit, r.failures),
        (None, None),
        "no cgroup: never a stall"
    );
}

/// Under a parent's limit the leaf's counter stays 0 and its working set
/// can be far below the limit (siblings fill the rest): the reading is
/// the limiting ancestor's, and the detector judges by it.
#[test]
fn under_a_parent_limit_the_ancestor_decides() {
    use crate::locate::Location;
    use crate::reader::{Events, LimitingCgroup};
    use crate::stat::MemoryStat;
    let mib = 1u64 << 20;
    // (case, version, leaf working set, ancestor working set, ancestor
    // failures per 250 ms, leaf memsw usage, ancestor memsw (usage, limit),
    // expected reading: working set, memsw, stall?)
    struct Case {
        name: &'static str,
        version: CgroupVersion,
        leaf_ws: u64,
        parent_ws: u64,
        parent_fail_step: u64,
        parent_memsw: Option<(u64, u64)>,
        stall: bool,
    }
    let cases = [
        Case {
            name: "v1: alone under the parent's limit",
            version: CgroupVersion::V1,
            leaf_ws: 250 * mib,
            parent_ws: 252 * mib,
            parent_fail_step: 1000,
            parent_memsw: None,
            stall: true,
        },
        Case {
            name: "v1: siblings fill the parent's limit; the leaf's working set is small",
            version: CgroupVersion::V1,
            leaf_ws: 60 * mib,
            parent_ws: 250 * mib,
            parent_fail_step: 1000,
            parent_memsw: None,
            stall: true,
        },
        Case {
            name: "v2: the parent's memory.events max",
            version: CgroupVersion::V2,
            leaf_ws: 60 * mib,
            parent_ws: 250 * mib,
            parent_fail_step: 50,
            parent_memsw: None,
            stall: true,
        },
        Case {
            name: "v1: page cache fills the parent: its working set is low",
            version: CgroupVersion::V1,
            leaf_ws: 20 * mib,
            parent_ws: 40 * mib,
            parent_fail_step: 1000,
            parent_memsw: None,
            stall: false,
        },
        Case {
            name: "v1: the parent's memory+swap limit binds, no failed charge counted",
            version: CgroupVersion::V1,
            leaf_ws: 250 * mib,
            parent_ws: 250 * mib,
            parent_fail_step: 0,
            parent_memsw: Some((255 * mib, 256 * mib)),
            stall: true,
        },
    ];
    for c in cases {
        let snap = |i: u64| Snapshot {
            location: Some(Location {
                version: c.version,
                cgroup_path: "/pod/app".into(),
                mount_point: "/sys/fs/cgroup".into(),
                dir: "/sys/fs/cgroup/pod/app".into(),
                resolved: true,
            }),
            cgroup_limit: Some(256 * mib),
            working_set: Some(c.leaf_ws),
            events: Some(Events {
                max: Some(0),
                failcnt: Some(0),
                ..Events::default()
            }),
            stat: Some(MemoryStat {
                // 40,000 refaults/s.
                workingset_refault: Some(i * 10_000),
                ..MemoryStat::default()
            }),
            limiting: Some(LimitingCgroup {
                path: "/pod".into(),
                dir: "/sys/fs/cgroup/pod".into(),
                depth: 1,
                usage: Some(c.parent_ws + mib),
                working_set: Some(c.parent_ws),
                failures: Some(i * c.parent_fail_step),
                memsw_usage: c.parent_memsw.map(|m| m.0),
                memsw_limit: c.parent_memsw.map(|m| m.1),
            }),
            ..Snapshot::default()
        };
        let r = Observation::from_snapshot(&snap(1), 250.0);
        assert_eq!(r.depth, 1, "{}", c.name);
        assert_eq!(r.working_set, Some(c.parent_ws as f64), "{}", c.name);
        assert_eq!(
            r.memsw,
            c.parent_memsw
                .filter(|_| c.version == CgroupVersion::V1)
                .map(|(u, l)| (u as f64, l as f64)),
            "{}",
            c.name
        );
        let mut d = Detector::new(StallConfig {
            margin: 0.1,
            sustain_ms: 1000.0,
        });
        let mut started = false;
        for i in 0..20 {
            let t = Observation::from_snapshot(&snap(i), i as f64 * 250.0);
            started |= matches!(d.feed(t), Some(Transition::Started(_)));
        }
        assert_eq!(started, c.stall, "{}", c.name);
        assert_eq!(d.stalled(), c.stall, "{}", c.name);
    }
}

#[test]
fn no_rate_spans_a_move_of_the_limit() {
    // The limit moved from the parent (failcnt 9e6) to the leaf (failcnt 10).
    let at = |t_ms, depth, count| Observation {
        t_ms,
        working_set: Some(LIMIT),
        limit: Some(LIMIT),
        failures: Some((Counter::Failcnt, count)),
        depth,
        ..Observation::default()
    };
    let f = figures(&at(0.0, 0, 10), &at(250.0, 1, 9_000_000), 250.0);
    assert_eq!(f.failures_per_sec, None);
    assert_eq!(f.counter, Some(Counter::Failcnt));
    let f = figures(&at(0.0, 1, 10), &at(250.0, 1, 260), 250.0);
    assert_eq!(f.failures_per_sec, Some(1000.0));
}

#[test]
fn the_record_and_the_reason_name_the_limiting_ancestor() {
    let f = Figures {
        duration_ms: 3000.0,
        failures_per_sec: Some(150_000.0),
        counter: Some(Counter::Failcnt),
        decided_by: Some(Evidence::ChargeFailures),
        ..Figures::default()
    };
    let j = json(&f, None, Some("/pod\"quoted\""));
    assert!(
        j.contains(
            "\"failureCounter\":\"memory.failcnt\",\"limitingCgroup\":\"/pod\\\"quoted\\\"\","
        ),
        "{j}"
    );
    assert!(json(&f, None, None).contains("\"limitingCgroup\":null,"));
    let long = format!("/{}", "p".repeat(5000));
    assert!(json(&f, None, Some(&long)).len() < 700, "the path is cut");
    assert_eq!(
        reason(&f, "cause", Some("/pod")),
        "stuck at the limit for 3.0 s without an OOM kill: 150000 failed charges/s (memory.failcnt of /pod, which holds the limit); cause"
    );
    assert_eq!(
        reason(&f, "cause", None),
        "stuck at the limit for 3.0 s without an OOM kill: 150000 failed charges/s (memory.failcnt); cause"
    );
}
