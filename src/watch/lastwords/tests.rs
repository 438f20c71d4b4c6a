use super::*;
use crate::stat::MemoryStat;

fn snap(anon: u64, file: u64, inactive_file: u64, shmem: u64, kernel: u64) -> Snapshot {
    Snapshot {
        usage: Some(anon + file + kernel),
        working_set: Some(anon + file + kernel - inactive_file),
        stat: Some(MemoryStat {
            anon: Some(anon),
            file: Some(file),
            inactive_file: Some(inactive_file),
            shmem: Some(shmem),
            kernel: Some(kernel),
            sock: Some(0),
            ..MemoryStat::default()
        }),
        ..Snapshot::default()
    }
}

const MIB: u64 = 1 << 20;

/// The records' and verdicts' time in these tests, Unix ms.
const NOW: f64 = 1.7e12;

/// V8's numbers read just now, with this heap.
fn v8(heap: f64) -> Option<V8Known> {
    Some(V8Known {
        timestamp_ms: NOW,
        numbers: crate::diagnose::V8Numbers {
            heap_total: Some(heap),
            heap_used: Some(heap),
            ..Default::default()
        },
    })
}

/// The evidence of V8's numbers read at the last sample (no growth since).
fn ev(s: &Snapshot, v8: Option<V8Known>) -> Evidence {
    Evidence {
        v8,
        usage_at_v8: s.usage,
        split: None,
        usage_at_split: None,
        now_ms: NOW,
    }
}

#[test]
fn verdicts() {
    let cases: &[(&str, Snapshot, Option<V8Known>, Verdict)] = &[
        (
            "js objects",
            snap(200 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB),
            v8(180.0 * MIB as f64),
            Verdict::V8Heap,
        ),
        (
            "buffers",
            snap(200 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB),
            v8(20.0 * MIB as f64),
            Verdict::OutsideHeap,
        ),
        (
            "tmpfs",
            snap(30 * MIB, 200 * MIB, 10 * MIB, 180 * MIB, 5 * MIB),
            v8(20.0 * MIB as f64),
            Verdict::PageCache,
        ),
        (
            "sockets/slab",
            snap(30 * MIB, 5 * MIB, 4 * MIB, 0, 120 * MIB),
            v8(20.0 * MIB as f64),
            Verdict::Kernel,
        ),
        (
            "no v8",
            snap(200 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB),
            None,
            Verdict::Unknown,
        ),
    ];
    for (name, s, v, want) in cases {
        let basis = s.working_set.unwrap() as f64;
        assert_eq!(verdict(s, basis, &ev(s, *v)).0, *want, "case {name}");
    }
}

fn split(anon: u64, malloc: u64) -> Option<Split> {
    Some(Split {
        anon: anon * MIB,
        malloc: malloc * MIB,
        malloc_in_use: malloc * MIB,
        source: crate::watch::alloc::Source::Mallinfo2,
        timestamp_ms: NOW,
    })
}

#[test]
fn a_fresh_split_decides_whatever_v8_said_and_stale_numbers_never_overclaim() {
    let s = snap(245 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB);
    let basis = s.working_set.unwrap() as f64;
    // The field case: a synchronous `a.push({ i: 1 })` loop; V8's numbers
    // 2651 ms old said a 6 MiB heap, the cgroup grew 220 MiB since.
    let stale = Some(V8Known {
        timestamp_ms: NOW - 2651.0,
        ..v8(6.0 * MIB as f64).unwrap()
    });
    let old = Evidence {
        v8: stale,
        usage_at_v8: Some(30 * MIB),
        split: None,
        usage_at_split: s.usage,
        now_ms: NOW,
    };
    let (v, reason) = verdict(&s, basis, &old);
    assert_eq!(v, Verdict::Unknown, "{reason}");
    assert_eq!(
        reason,
        "unattributed growth since the last V8 reading (2651 ms ago): the cgroup grew by 225 MiB since, when the V8 heap was 6 MiB; anonymous memory is 245 MiB now"
    );
    // No usage known at the V8 reading: the growth is unknown too.
    let unknown = Evidence {
        usage_at_v8: None,
        ..old
    };
    let (v, reason) = verdict(&s, basis, &unknown);
    assert_eq!(v, Verdict::Unknown);
    assert!(reason.contains("grew by an unknown amount"), "{reason}");
    // Little growth since: the stale numbers still rule out the heap.
    let little = Evidence {
        usage_at_v8: Some(200 * MIB),
        ..old
    };
    let (v, reason) = verdict(&s, basis, &little);
    assert_eq!(v, Verdict::OutsideHeap);
    assert!(
        reason.contains("6 MiB, 2651 ms old, and the 55 MiB grown since cannot change that"),
        "{reason}"
    );
    // With the allocator's split read now: 230 of 245 MiB outside malloc.
    let fresh = Evidence {
        split: split(245, 15),
        ..old
    };
    let (v, reason) = verdict(&s, basis, &fresh);
    assert_eq!(v, Verdict::V8Heap, "{reason}");
    assert_eq!(
        reason,
        "the V8 heap: 230 MiB of this process's 245 MiB of anonymous memory is outside malloc (malloc holds 15 MiB, read 0 ms ago; V8's numbers, 2651 ms old, gave the heap 6 MiB)"
    );
    // A synchronous Buffer loop: malloc holds most; stale V8 numbers
    // that said a big heap do not overturn it.
    let buffers = Evidence {
        v8: Some(V8Known {
            timestamp_ms: NOW - 3000.0,
            ..v8(200.0 * MIB as f64).unwrap()
        }),
        split: split(245, 215),
        ..old
    };
    let (v, reason) = verdict(&s, basis, &buffers);
    assert_eq!(v, Verdict::OutsideHeap, "{reason}");
    assert!(reason.starts_with("anonymous memory (245 MiB) is mostly outside the V8 heap: malloc holds 215 MiB of this process's 245 MiB"), "{reason}");
    // The split is of this process; the cgroup's anonymous memory is
    // the whole: a heap that is most of this process but not of the
    // cgroup is not most of it.
    let mut bigger = snap(245 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB);
    bigger.stat.as_mut().unwrap().anon = Some(600 * MIB);
    assert_eq!(verdict(&bigger, basis, &fresh).0, Verdict::OutsideHeap);
    // malloc can hold more than is resident (untouched blocks): capped.
    let over = Evidence {
        split: split(100, 300),
        ..old
    };
    let (v, reason) = verdict(&s, basis, &over);
    assert_eq!(v, Verdict::OutsideHeap);
    assert!(
        reason.contains("malloc holds 100 MiB of this process's 100 MiB"),
        "{reason}"
    );
    // A split read 400 ms ago (its reading was costly), the cgroup
    // 150 MiB larger since: it cannot rule out the heap any more.
    let late = Evidence {
        split: Some(Split {
            timestamp_ms: NOW - 400.0,
            ..split(95, 80).unwrap()
        }),
        usage_at_split: Some(105 * MIB),
        v8: None,
        ..old
    };
    let (v, reason) = verdict(&s, basis, &late);
    assert_eq!(v, Verdict::Unknown, "{reason}");
    assert_eq!(
        reason,
        "unattributed growth since the allocator's reading (400 ms ago): the cgroup grew by 150 MiB since, when 15 MiB of this process's 95 MiB was outside malloc; anonymous memory is 245 MiB now"
    );
    // ...and 10 MiB since still can not bring the heap to half.
    let close = Evidence {
        usage_at_split: Some(245 * MIB),
        ..late
    };
    assert_eq!(verdict(&s, basis, &close).0, Verdict::OutsideHeap);
    // V8's numbers fresher than the split: they decide (with their own growth rule).
    let newer = Evidence {
        v8: v8(200.0 * MIB as f64),
        usage_at_v8: s.usage,
        ..late
    };
    let (v, reason) = verdict(&s, basis, &newer);
    assert_eq!(v, Verdict::V8Heap);
    assert!(reason.ends_with("V8's numbers are 0 ms old"), "{reason}");
    // Page cache and kernel memory still come first.
    let mut cache = snap(30 * MIB, 200 * MIB, 10 * MIB, 180 * MIB, 5 * MIB);
    cache.rss = None;
    assert_eq!(verdict(&cache, basis, &fresh).0, Verdict::PageCache);
}

#[test]
fn a_record_carries_the_split_and_the_age() {
    let s = snap(245 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB);
    let t = [0.8, 0.9, 0.95];
    let mut r = input(&s, 1, &t, RecordEvent::Threshold);
    r.v8 = Some(V8Known {
        timestamp_ms: NOW - 2651.0,
        ..v8(6.0 * MIB as f64).unwrap()
    });
    r.split = split(245, 15);
    let line = record(&r);
    assert!(line.contains("\"ageMs\":2651}"), "{line}");
    assert!(line.contains("\"verdict\":\"v8-heap\""), "{line}");
    assert!(
        line.ends_with(&format!(
            ",\"allocator\":{{\"call\":\"mallinfo2\",\"anonBytes\":{},\"mallocBytes\":{},\"mallocInUseBytes\":{},\"ageMs\":0}}}}\n",
            245 * MIB,
            15 * MIB,
            15 * MIB
        )),
        "{line}"
    );
}

/// A snapshot of 200 MiB anon where this process has `own` MiB of RSS
/// and the cgroup also holds `other` (pid, MiB); each process's
/// anonymous memory is its RSS, the scan 400 ms older than
/// [`input`]'s record.
fn with_processes(own: u64, others: &[(u32, u64)]) -> Snapshot {
    use crate::procs::{CgroupProcess, Processes};
    let mut s = snap(200 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB);
    s.rss = Some(own * MIB);
    s.anon = Some(own * MIB);
    let mut largest: Vec<CgroupProcess> = others
        .iter()
        .map(|&(pid, mib)| CgroupProcess {
            pid,
            command: Some(format!("p{pid}")),
            rss: Some(mib * MIB),
            anon: Some(mib * MIB),
        })
        .collect();
    largest.push(CgroupProcess {
        pid: std::process::id(),
        command: Some("node".into()),
        rss: Some(own * MIB),
        anon: Some(own * MIB),
    });
    largest.sort_by_key(|p| std::cmp::Reverse(p.rss));
    s.processes = Some(std::sync::Arc::new(Processes {
        count: largest.len(),
        largest,
        timestamp_ms: 1.7e12 - 400.0,
    }));
    s
}

#[test]
fn another_process_verdict() {
    let heap = v8(20.0 * MIB as f64);
    let basis = 206.0 * MIB as f64;
    // 30 MiB of 206 MiB (15%) beside a 170 MiB `convert`: another process.
    let s = with_processes(30, &[(7, 170)]);
    let (v, reason) = verdict(&s, basis, &ev(&s, heap));
    assert_eq!(v, Verdict::AnotherProcess);
    assert_eq!(
        reason,
        "this process's anonymous memory (30 MiB) is 15% of the working set; the largest process in the cgroup is pid 7 (p7, 170 MiB)"
    );
    // Compared by anonymous memory, not RSS: a process whose 170 MiB of RSS is
    // mostly mapped files (charged to whoever read them first) with 20 MiB of
    // its own is no larger than this one's 30.
    let mut mapped = with_processes(30, &[(7, 170)]);
    let procs = std::sync::Arc::make_mut(mapped.processes.as_mut().unwrap());
    procs.largest[0].anon = Some(20 * MIB);
    assert_eq!(
        verdict(&mapped, basis, &ev(&mapped, heap)).0,
        Verdict::OutsideHeap
    );
    // Where anonymous memory is unknown (this process's statm unread), RSS.
    let mut rss_only = with_processes(30, &[(7, 170)]);
    rss_only.anon = None;
    let (v, reason) = verdict(&rss_only, basis, &ev(&rss_only, heap));
    assert_eq!(v, Verdict::AnotherProcess);
    assert!(
        reason.starts_with("this process's RSS (30 MiB) is 15%"),
        "{reason}"
    );
    // At the line: 25% is not a small part.
    let at = with_processes(52, &[(7, 150)]);
    assert_eq!(
        verdict(&at, 208.0 * MIB as f64, &ev(&at, heap)).0,
        Verdict::OutsideHeap
    );
    // Small, but the others are smaller still (page cache, kernel): not another process.
    let alone = with_processes(30, &[(7, 10), (8, 10)]);
    assert_eq!(
        verdict(&alone, basis, &ev(&alone, heap)).0,
        Verdict::OutsideHeap
    );
    // Alone in the cgroup.
    assert_eq!(
        verdict(&with_processes(30, &[]), basis, &ev(&s, heap)).0,
        Verdict::OutsideHeap
    );
    // Page cache and kernel memory still come first: they are no process's RSS.
    let mut cache = with_processes(10, &[(7, 20)]);
    cache.stat = snap(30 * MIB, 200 * MIB, 10 * MIB, 180 * MIB, 5 * MIB).stat;
    assert_eq!(
        verdict(&cache, basis, &ev(&cache, heap)).0,
        Verdict::PageCache
    );
}

#[test]
fn record_names_the_largest_process_and_this_share() {
    let s = with_processes(30, &[(7, 170)]);
    let t = [0.9];
    let mut r = input(&s, 1, &t, RecordEvent::Threshold);
    r.basis = 200.0 * MIB as f64;
    let line = record(&r);
    assert!(line.contains("\"verdict\":\"another-process\""), "{line}");
    assert!(
        line.contains(&format!("\"rssBytes\":{}", 30 * MIB)),
        "{line}"
    );
    assert!(
        line.contains(&format!("\"anonBytes\":{},\"anonShare\":0.1500,", 30 * MIB)),
        "{line}"
    );
    assert!(line.contains("\"processCount\":2"), "{line}");
    assert!(
        line.contains(&format!(
            "\"largestProcess\":{{\"pid\":7,\"command\":\"p7\",\"rssBytes\":{0},\"anonBytes\":{0},\"ageMs\":400}},",
            170 * MIB
        )),
        "the scan's figures, and how old they are: {line}"
    );
    let plain = snap(200 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB);
    let line = record(&input(&plain, 1, &t, RecordEvent::Threshold));
    assert!(line.contains("\"rssBytes\":null,\"anonBytes\":null,\"anonShare\":null,\"processCount\":null,\"largestProcess\":null,\"allocator\":null}"), "{line}");
}

#[test]
fn one_figure_per_process_in_a_record() {
    let t = [0.9];
    // This process is the largest: its entry takes the record's own
    // figures (read with the record), not the scan's older ones.
    let mut s = with_processes(60, &[(7, 50)]);
    s.rss = Some(252 * MIB);
    s.anon = Some(240 * MIB);
    let line = record(&input(&s, 1, &t, RecordEvent::Threshold));
    let me = std::process::id();
    assert!(
        line.contains(&format!(
            "\"rssBytes\":{0},\"anonBytes\":{1},\"anonShare\":1.2583,\"processCount\":2,\"largestProcess\":{{\"pid\":{me},\"command\":\"node\",\"rssBytes\":{0},\"anonBytes\":{1},\"ageMs\":0}},",
            252 * MIB,
            240 * MIB
        )),
        "{line}"
    );
    // This process grew past the scan's largest since the scan: it is the largest now.
    let mut grew = with_processes(10, &[(7, 50)]);
    grew.anon = Some(80 * MIB);
    let line = record(&input(&grew, 1, &t, RecordEvent::Threshold));
    assert!(
        line.contains(&format!("\"largestProcess\":{{\"pid\":{me},")),
        "{line}"
    );
    // The most RSS, mostly mapped files, is not the largest: anonymous memory decides.
    let mut files = with_processes(10, &[(7, 50), (8, 40)]);
    let mut p = (**files.processes.as_ref().unwrap()).clone();
    for q in p.largest.iter_mut().filter(|q| q.pid == 7) {
        q.anon = Some(5 * MIB);
    }
    files.processes = Some(std::sync::Arc::new(p));
    let line = record(&input(&files, 1, &t, RecordEvent::Threshold));
    assert!(line.contains("\"largestProcess\":{\"pid\":8,"), "{line}");
}

fn input<'a>(
    s: &'a Snapshot,
    level: usize,
    thresholds: &'a [f64],
    event: RecordEvent,
) -> RecordInput<'a> {
    RecordInput {
        snap: s,
        basis: 2e8,
        ratio: 0.95,
        growth: 1e8,
        time_to_limit_ms: Some(120.4),
        v8: v8(1.8e8),
        usage_at_v8: s.usage,
        split: None,
        usage_at_split: s.usage,
        now_ms: NOW,
        level,
        thresholds,
        event,
        seq: 4,
        stall: None,
    }
}

#[test]
fn record_is_one_line_of_json_that_fits() {
    let s = snap(200 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB);
    let t = [0.8, 0.9, 0.95];
    let line = record(&input(&s, 3, &t, RecordEvent::Threshold));
    assert!(line.ends_with("}\n") && line.matches('\n').count() == 1);
    assert!(line.len() < MAX_LINE);
    assert!(line.contains("\"verdict\":\"v8-heap\""), "{line}");
    assert!(line.contains("\"timeToLimitMs\":120"), "{line}");
    assert!(line.contains("\"slab\":null"), "{line}");
    assert!(line.contains("\"threshold\":0.95,"), "{line}");
    assert!(
        line.contains(",\"level\":3,\"final\":true,\"event\":\"threshold\",\"thresholds\":[0.8,0.9,0.95],\"seq\":4,"),
        "{line}"
    );
    // The version-1 fields come first, in their order.
    let keys = [
        "oomguard",
        "version",
        "time",
        "pid",
        "source",
        "cgroup",
        "limitBytes",
        "usageBytes",
        "workingSetBytes",
        "basisBytes",
        "ratio",
        "threshold",
        "growthBytesPerSec",
        "timeToLimitMs",
        "breakdown",
        "v8",
        "verdict",
        "reason",
        "level",
        "final",
        "event",
        "thresholds",
        "seq",
        "rssBytes",
        "anonBytes",
        "anonShare",
        "processCount",
        "largestProcess",
    ];
    let mut at = 0;
    for k in keys {
        let i = line[at..]
            .find(&format!("\"{k}\":"))
            .unwrap_or_else(|| panic!("{k} in order: {line}"));
        at += i + 1;
    }
}

#[test]
fn record_says_which_threshold_and_whether_it_is_final() {
    let s = snap(200 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB);
    let t = [0.6, 0.9999];
    let cases: &[(&str, usize, RecordEvent, &str)] = &[
        (
            "first of two",
            1,
            RecordEvent::Threshold,
            "\"threshold\":0.6,",
        ),
        (
            "an update at the first",
            1,
            RecordEvent::Update,
            "\"event\":\"update\"",
        ),
        ("the final one", 2, RecordEvent::Threshold, "\"final\":true"),
        (
            "recovered below all",
            0,
            RecordEvent::Recovered,
            "\"threshold\":0.6,",
        ),
        (
            "recovered below all, not final",
            0,
            RecordEvent::Recovered,
            "\"level\":0,\"final\":false,\"event\":\"recovered\"",
        ),
    ];
    for (name, level, event, want) in cases {
        let line = record(&input(&s, *level, &t, *event));
        assert!(line.contains(want), "case {name}: {line}");
    }
}

#[test]
fn a_huge_cgroup_path_keeps_the_line_short() {
    let mut s = snap(200 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB);
    s.location = Some(crate::locate::Location {
        version: crate::locate::CgroupVersion::V2,
        cgroup_path: format!("/{}", "é".repeat(3000)),
        dir: "/sys/fs/cgroup/x".into(),
        mount_point: "/sys/fs/cgroup".into(),
        resolved: true,
    });
    let t: Vec<f64> = (1..=16).map(|i| i as f64 / 17.0).collect();
    let line = record(&input(&s, 16, &t, RecordEvent::Threshold));
    assert!(line.len() < MAX_LINE, "{} bytes", line.len());
    assert!(line.ends_with("}\n"));
    // The largest process's name too: 64 bytes (cut to 15 in the record),
    // each escaped to 6 (\u0001), and the longest reason (another-process).
    let mut p = with_processes(1, &[(u32::MAX, 1 << 40)]);
    p.location = s.location.clone();
    let mut procs = (**p.processes.as_ref().unwrap()).clone();
    procs.largest[0].command = Some(crate::procs::parse_comm(&"\u{1}".repeat(200)).unwrap());
    p.processes = Some(std::sync::Arc::new(procs));
    // And a limiting ancestor whose path is as long as the leaf's.
    p.limiting = Some(crate::reader::LimitingCgroup {
        path: format!("/{}", "é".repeat(3000)),
        ..Default::default()
    });
    let mut r = input(&p, 16, &t, RecordEvent::Threshold);
    r.basis = 9.0e15;
    let line = record(&r);
    assert!(line.contains("another-process"), "{line}");
    assert!(line.len() < MAX_LINE, "{} bytes: {line}", line.len());
    // And a stall record, with every figure at its longest.
    let fig = crate::watch::stall::Figures {
        duration_ms: 8.64e13,
        window_ms: 1e12,
        ratio: Some(0.123456789),
        failures_per_sec: Some(9.0e15),
        counter: Some(crate::watch::stall::Counter::EventsMax),
        pressure: Some(crate::watch::stall::PressureFigure {
            scope: crate::reader::PressureScope::System,
            kind: crate::watch::stall::PsiKind::Some,
            ratio: 0.123456789,
            avg10: 0.123456789,
        }),
        refaults_per_sec: Some(9.0e15),
        memsw_ratio: Some(0.123456789),
        decided_by: Some(crate::watch::stall::Evidence::ChargeFailures),
    };
    r.stall = Some((&fig, Some(crate::watch::stall::EXIT_CODE)));
    r.event = RecordEvent::Stall;
    let line = record(&r);
    assert!(line.contains("\"verdict\":\"stall\""), "{line}");
    assert!(line.len() < MAX_LINE, "{} bytes: {line}", line.len());
}

#[test]
fn when_the_flight_record_is_written() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let limit = 1000.0;
    let mut f = FlightRecord::default();
    assert_eq!(
        f.due(0, 0, 500.0, limit, ms(0)),
        None,
        "below every threshold: nothing"
    );
    assert_eq!(
        f.due(0, 1, 800.0, limit, ms(0)),
        Some(RecordEvent::Threshold)
    );
    f.wrote(800.0, 1, ms(0));
    assert_eq!(f.seq, 1);
    assert_eq!(
        f.due(1, 1, 809.0, limit, ms(50)),
        None,
        "moved less than 1%"
    );
    assert_eq!(
        f.due(1, 1, 810.0, limit, ms(5)),
        None,
        "moved 1%, but within 10 ms"
    );
    assert_eq!(f.due(1, 1, 810.0, limit, ms(10)), Some(RecordEvent::Update));
    assert_eq!(
        f.due(1, 1, 790.0, limit, ms(10)),
        Some(RecordEvent::Update),
        "down counts too"
    );
    assert_eq!(
        f.due(1, 2, 801.0, limit, ms(1)),
        Some(RecordEvent::Threshold),
        "a level change at once"
    );
    assert_eq!(
        f.due(1, 0, 700.0, limit, ms(1)),
        Some(RecordEvent::Recovered)
    );
    let fresh = FlightRecord::default();
    assert_eq!(
        fresh.due(2, 2, 900.0, limit, ms(0)),
        Some(RecordEvent::Update),
        "at a level without a record"
    );
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("oomguard-lw-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir(&d).unwrap();
    d
}

#[test]
fn the_file_is_rewritten_in_place_and_always_parses() {
    let d = temp_dir("rewrite");
    let f = d.join("termination-log");
    std::fs::write(&f, "x".repeat(6000)).unwrap();
    write_file(&f, "{\"a\":1}\n").unwrap();
    let text = std::fs::read_to_string(&f).unwrap();
    assert_eq!(text.len(), MAX_BYTES, "junk beyond a page is cut");
    assert!(
        text.starts_with("{\"a\":1") && text.ends_with(" }\n"),
        "{text}"
    );
    empty_file(&f).unwrap();
    write_file(&f, "{\"a\":1}\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "{\"a\":1}\n",
        "an empty file gets the record as it is"
    );
    let long = format!("{{\"a\":\"{}\"}}\n", "y".repeat(100));
    write_file(&f, &long).unwrap();
    assert_eq!(std::fs::read_to_string(&f).unwrap(), long);
    // Shorter: padded inside the object to the old length, never cut, so
    // every state of the file is one whole record on one line.
    write_file(&f, "{\"b\":2}\n").unwrap();
    let text = std::fs::read_to_string(&f).unwrap();
    assert_eq!(text.len(), long.len());
    assert!(
        text.starts_with("{\"b\":2 ") && text.ends_with(" }\n") && text.matches('\n').count() == 1,
        "{text:?}"
    );
    empty_file(&f).unwrap();
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "");
    empty_file(&d.join("absent")).unwrap();
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn writes_that_cannot_happen_fail_at_once_naming_the_file() {
    let d = temp_dir("fail");
    let fifo = d.join("fifo");
    let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let t0 = Instant::now();
    let e = write_file(&fifo, "{}\n").unwrap_err().message;
    assert!(t0.elapsed() < Duration::from_millis(500), "never blocks");
    assert!(
        e.contains(&fifo.display().to_string()) && e.contains("FIFO"),
        "{e}"
    );
    let e = write_file(Path::new("/dev/full"), "{}\n").unwrap_err();
    assert_eq!(e.errno, libc::ENOSPC);
    let e = e.message;
    assert!(e.starts_with("cannot write /dev/full"), "{e}");
    let e = write_file(&d.join("missing/dir/file"), "{}\n")
        .unwrap_err()
        .message;
    assert!(
        e.contains("cannot open") && e.contains("missing/dir/file"),
        "{e}"
    );
    let e = write_file(&d, "{}\n").unwrap_err().message;
    assert!(e.contains("directory"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn stall_record_names_the_stall_and_its_cause() {
    let s = snap(200 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB);
    let fig = crate::watch::stall::Figures {
        duration_ms: 30_000.0,
        failures_per_sec: Some(150_000.0),
        counter: Some(crate::watch::stall::Counter::Failcnt),
        ..Default::default()
    };
    let t = [0.8, 0.9, 0.95];
    let line = record(&RecordInput {
        stall: Some((&fig, Some(75))),
        ..input(&s, 3, &t, RecordEvent::Stall)
    });
    assert!(line.contains("\"event\":\"stall\""), "{line}");
    assert!(line.ends_with("}\n") && line.len() < MAX_LINE, "{line}");
    assert!(
        line.contains("\"verdict\":\"stall\",\"reason\":\"stuck at the limit for 30.0 s"),
        "{line}"
    );
    assert!(
        line.contains("; the V8 heap (172 MiB) is most of the anonymous memory (200 MiB); V8's numbers are 0 ms old\""),
        "{line}"
    );
    assert!(
        line.contains("\"cause\":\"v8-heap\",\"stall\":{\"durationMs\":30000,"),
        "{line}"
    );
    assert!(
        line.contains("\"action\":\"exit\",\"exitCode\":75},\"level\":3,"),
        "{line}"
    );
}

#[test]
fn iso_times() {
    assert_eq!(iso_time(0.0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso_time(951_782_400_123.0), "2000-02-29T00:00:00.123Z");
    assert_eq!(iso_time(1_795_601_717_478.0), "2026-11-25T10:15:17.478Z");
}

#[test]
fn the_appendix_goes_last_where_it_fits_and_never_past_the_line() {
    let s = snap(200 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB);
    let t = [0.8, 0.9, 0.95];
    let line = record(&input(&s, 1, &t, RecordEvent::Threshold));
    // Monitor ids no other test uses: the store is process-wide.
    let id = 4_000_001;
    assert_eq!(with_appendix(id, line.clone()), line, "none set: unchanged");
    let big = format!(
        "\"heapProfile\":{{\"s\":\"{}\"}}",
        "x".repeat(MAX_LINE - 30)
    );
    let small = "\"heapProfile\":{\"sites\":[]}".to_string();
    assert_eq!(
        set_appendix(id, vec![big.clone(), small.clone()]).unwrap(),
        None
    );
    let out = with_appendix(id, line.clone());
    assert!(out.ends_with(",\"heapProfile\":{\"sites\":[]}}\n"), "{out}");
    assert!(out.len() < MAX_LINE);
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(parsed["heapProfile"]["sites"].is_array());
    assert_eq!(
        set_appendix(id, vec![big]).unwrap().as_deref(),
        Some("v8-heap"),
        "the last record's verdict"
    );
    assert_eq!(with_appendix(id, line.clone()), line, "too long: left out");
    // Refused: not a member, a newline, too many.
    assert!(set_appendix(id, vec!["{}".into()]).is_err());
    assert!(set_appendix(id, vec!["\"a\":\n1".into()]).is_err());
    assert!(set_appendix(id, vec![small.clone(); MAX_APPENDIX_CANDIDATES + 1]).is_err());
    set_appendix(id, Vec::new()).unwrap();
    assert_eq!(with_appendix(id, line.clone()), line, "cleared");
    forget_appendix(id);
    assert_eq!(set_appendix(id, Vec::new()).unwrap(), None, "forgotten");
    forget_appendix(id);
}
