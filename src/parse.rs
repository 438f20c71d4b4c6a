//! Pure parsers: text of a kernel file in, values out. No I/O, no paths, and
//! no panics on any input (property-tested below).

use crate::error::ParseError;

/// cgroup v1 prints "no limit" as LONG_MAX rounded down to a page:
/// 9223372036854771712. Anything at or above it means unlimited.
pub const V1_UNLIMITED: u64 = 9_223_372_036_854_771_712;

type PResult<T> = Result<T, ParseError>;

fn parse_number(token: &str, line: usize, what: &str) -> PResult<u64> {
    token.parse::<u64>().map_err(|_| {
        ParseError::new(
            line,
            format!("{what}: expected an unsigned integer, found {token:?}"),
        )
    })
}

/// The single value of a file such as `memory.current`, `memory.usage_in_bytes`
/// or `memory.failcnt`. A trailing newline is optional.
pub fn parse_u64(text: &str) -> PResult<u64> {
    let token = single_token(text)?;
    parse_number(token, 1, "value")
}

/// A limit file: v2 `memory.max`/`memory.high` or v1 `memory.limit_in_bytes`.
/// `max` and the v1 unlimited value are `None`.
pub fn parse_limit(text: &str) -> PResult<Option<u64>> {
    let token = single_token(text)?;
    if token == "max" {
        return Ok(None);
    }
    let value = parse_number(token, 1, "limit")?;
    Ok(if value >= V1_UNLIMITED {
        None
    } else {
        Some(value)
    })
}

/// Limit value as printed inside `memory.stat` (`hierarchical_memory_limit`).
pub fn limit_from_value(value: u64) -> Option<u64> {
    if value >= V1_UNLIMITED {
        None
    } else {
        Some(value)
    }
}

fn single_token(text: &str) -> PResult<&str> {
    let mut lines = text.lines();
    let first = lines.next().map(str::trim).unwrap_or("");
    if first.is_empty() {
        return Err(ParseError::new(0, "empty file"));
    }
    if first.split_ascii_whitespace().count() != 1 {
        return Err(ParseError::new(
            1,
            format!("expected one value, found {first:?}"),
        ));
    }
    if let Some((i, extra)) = lines.enumerate().find(|(_, l)| !l.trim().is_empty()) {
        return Err(ParseError::new(
            i + 2,
            format!("unexpected text after the value: {extra:?}"),
        ));
    }
    Ok(first)
}

/// A flat-keyed file: `key value` per line (`memory.stat`, `memory.events`,
/// v1 `memory.oom_control`). Order is kept. A malformed line is an error that
/// names it: nothing is skipped silently.
pub fn parse_flat_keyed(text: &str) -> PResult<Vec<(String, u64)>> {
    let mut out = Vec::with_capacity(64);
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_ascii_whitespace();
        let (key, value) = match (parts.next(), parts.next(), parts.next()) {
            (Some(k), Some(v), None) => (k, v),
            _ => {
                return Err(ParseError::new(
                    line_no,
                    format!("expected \"key value\", found {line:?}"),
                ));
            }
        };
        out.push((key.to_string(), parse_number(value, line_no, key)?));
    }
    Ok(out)
}

/// Look a key up in a flat-keyed list.
pub fn lookup(entries: &[(String, u64)], key: &str) -> Option<u64> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// One line of `/proc/self/cgroup`: `hierarchy-ID:controller-list:cgroup-path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroupLine {
    pub hierarchy_id: u32,
    /// Empty for the cgroup v2 line (`0::/path`).
    pub controllers: Vec<String>,
    /// The path may itself contain colons: only the first two separate fields.
    pub path: String,
}

pub fn parse_proc_cgroup(text: &str) -> PResult<Vec<ProcCgroupLine>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.splitn(3, ':');
        let (id, ctrl, path) = match (fields.next(), fields.next(), fields.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => {
                return Err(ParseError::new(
                    line_no,
                    format!("expected \"id:controllers:path\", found {line:?}"),
                ))
            }
        };
        let hierarchy_id = id.parse::<u32>().map_err(|_| {
            ParseError::new(line_no, format!("hierarchy id is not a number: {id:?}"))
        })?;
        if !path.starts_with('/') {
            return Err(ParseError::new(
                line_no,
                format!("cgroup path is not absolute: {path:?}"),
            ));
        }
        let controllers = if ctrl.is_empty() {
            Vec::new()
        } else {
            ctrl.split(',').map(str::to_string).collect()
        };
        out.push(ProcCgroupLine {
            hierarchy_id,
            controllers,
            path: path.to_string(),
        });
    }
    Ok(out)
}

/// The fields of a `/proc/self/mountinfo` line that locating a cgroup needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// The mount's id (1st field), unique in the mount namespace.
    pub id: u64,
    /// The id of the mount this one is mounted on (2nd field). For the
    /// namespace's root it names a mount that is not listed.
    pub parent_id: u64,
    /// The root of the mount within its filesystem (4th field), unescaped.
    pub root: String,
    /// Where it is mounted (5th field), unescaped.
    pub mount_point: String,
    pub fs_type: String,
    /// Per-superblock options (last field), where cgroup v1 names its controllers.
    pub super_options: Vec<String>,
}

/// Undo the octal escapes the kernel writes for space, tab, newline and backslash.
pub fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = (oct[0] - b'0') as u32 * 64
                    + (oct[1] - b'0') as u32 * 8
                    + (oct[2] - b'0') as u32;
                if v <= 255 {
                    out.push(v as u8);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_mountinfo(text: &str) -> PResult<Vec<MountInfo>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-");
        let sep = match sep {
            // Fields after "-": type, source, super options.
            Some(s) if s >= 6 && fields.len() >= s + 4 => s,
            _ => {
                return Err(ParseError::new(
                    line_no,
                    format!(
                    "not a mountinfo line (need 6+ fields, \"-\", type, source, options): {line:?}"
                ),
                ))
            }
        };
        out.push(MountInfo {
            id: parse_number(fields[0], line_no, "mount id")?,
            parent_id: parse_number(fields[1], line_no, "parent id")?,
            root: unescape_mountinfo(fields[3]),
            mount_point: unescape_mountinfo(fields[4]),
            fs_type: fields[sep + 1].to_string(),
            super_options: fields[sep + 3].split(',').map(str::to_string).collect(),
        });
    }
    Ok(out)
}

/// One line of a PSI file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PressureLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Total stall time in microseconds.
    pub total_us: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pressure {
    pub some: PressureLine,
    /// Absent from old kernels' CPU files; always there for memory.
    pub full: Option<PressureLine>,
}

pub fn parse_pressure(text: &str) -> PResult<Pressure> {
    let mut some = None;
    let mut full = None;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_ascii_whitespace();
        let kind = parts.next().unwrap_or("");
        let (mut a10, mut a60, mut a300, mut total) = (None, None, None, None);
        for part in parts {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                ParseError::new(line_no, format!("expected key=value, found {part:?}"))
            })?;
            let bad = || ParseError::new(line_no, format!("{k}: not a number: {v:?}"));
            match k {
                "avg10" => a10 = Some(v.parse::<f64>().map_err(|_| bad())?),
                "avg60" => a60 = Some(v.parse::<f64>().map_err(|_| bad())?),
                "avg300" => a300 = Some(v.parse::<f64>().map_err(|_| bad())?),
                "total" => total = Some(v.parse::<u64>().map_err(|_| bad())?),
                _ => {}
            }
        }
        let parsed = match (a10, a60, a300, total) {
            (Some(avg10), Some(avg60), Some(avg300), Some(total_us))
                if avg10.is_finite() && avg60.is_finite() && avg300.is_finite() =>
            {
                PressureLine {
                    avg10,
                    avg60,
                    avg300,
                    total_us,
                }
            }
            _ => {
                return Err(ParseError::new(
                    line_no,
                    format!("expected avg10= avg60= avg300= total=, found {line:?}"),
                ))
            }
        };
        match kind {
            "some" => some = Some(parsed),
            "full" => full = Some(parsed),
            other => {
                return Err(ParseError::new(
                    line_no,
                    format!("expected some or full, found {other:?}"),
                ))
            }
        }
    }
    match some {
        Some(some) => Ok(Pressure { some, full }),
        None => Err(ParseError::new(0, "no \"some\" line")),
    }
}

/// The `/proc/meminfo` values oomguard uses, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemInfo {
    pub mem_total: Option<u64>,
    pub mem_available: Option<u64>,
    /// The host's swap space (`SwapTotal`): 0 where no swap is on, so
    /// nothing can be swapped out whatever a cgroup's swap limit says.
    pub swap_total: Option<u64>,
}

pub fn parse_meminfo(text: &str) -> PResult<MemInfo> {
    let mut info = MemInfo::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let target = if line.starts_with("MemTotal:") {
            &mut info.mem_total
        } else if line.starts_with("MemAvailable:") {
            &mut info.mem_available
        } else if line.starts_with("SwapTotal:") {
            &mut info.swap_total
        } else {
            continue;
        };
        let mut parts = line.split_ascii_whitespace().skip(1);
        let value = parts
            .next()
            .ok_or_else(|| ParseError::new(line_no, format!("no value: {line:?}")))?;
        let kib = parse_number(value, line_no, "meminfo value")?;
        let bytes = match parts.next() {
            Some("kB") => kib.checked_mul(1024),
            None => Some(kib),
            Some(unit) => return Err(ParseError::new(line_no, format!("unknown unit {unit:?}"))),
        };
        *target = Some(bytes.ok_or_else(|| ParseError::new(line_no, "value overflows"))?);
    }
    if info.mem_total.is_none() {
        return Err(ParseError::new(0, "no MemTotal line"));
    }
    Ok(info)
}

/// Resident pages from `/proc/self/statm` (second field), in bytes.
pub fn parse_statm_rss(text: &str, page_size: u64) -> PResult<u64> {
    let line = text.lines().next().unwrap_or("");
    let mut fields = line.split_ascii_whitespace();
    let _size = fields.next();
    let resident = fields.next().ok_or_else(|| {
        ParseError::new(
            1,
            format!("expected size and resident pages, found {line:?}"),
        )
    })?;
    parse_number(resident, 1, "resident")?
        .checked_mul(page_size)
        .ok_or_else(|| ParseError::new(1, "resident bytes overflow"))
}

/// Resident anonymous memory from `/proc/self/statm`, in bytes: resident
/// pages (second field) less the shared ones (third: file-backed and shmem
/// pages), which is the kernel's `RssAnon`.
pub fn parse_statm_anon(text: &str, page_size: u64) -> PResult<u64> {
    let line = text.lines().next().unwrap_or("");
    let mut fields = line.split_ascii_whitespace().skip(1);
    let (Some(resident), Some(shared)) = (fields.next(), fields.next()) else {
        return Err(ParseError::new(
            1,
            format!("expected size, resident and shared pages, found {line:?}"),
        ));
    };
    let resident = parse_number(resident, 1, "resident")?;
    let shared = parse_number(shared, 1, "shared")?;
    resident
        .saturating_sub(shared)
        .checked_mul(page_size)
        .ok_or_else(|| ParseError::new(1, "anonymous bytes overflow"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::RngSeed;

    #[test]
    fn u64_cases() {
        let cases: &[(&str, &str, Option<u64>)] = &[
            ("with newline", "200466432\n", Some(200466432)),
            ("no trailing newline", "200466432", Some(200466432)),
            ("surrounding blanks", "  42 \n\n", Some(42)),
            ("empty", "", None),
            ("only newline", "\n", None),
            ("negative", "-1\n", None),
            ("garbage", "abc\n", None),
            ("two values", "1 2\n", None),
            ("second line", "1\n2\n", None),
            ("overflow", "18446744073709551616\n", None),
        ];
        for (name, text, want) in cases {
            assert_eq!(parse_u64(text).ok(), *want, "case {name}");
        }
    }

    #[test]
    fn limit_cases() {
        type Case = (&'static str, &'static str, Result<Option<u64>, ()>);
        let cases: &[Case] = &[
            ("v2 max", "max\n", Ok(None)),
            ("v2 max no newline", "max", Ok(None)),
            ("v1 unlimited", "9223372036854771712\n", Ok(None)),
            ("above v1 unlimited", "9223372036854775807\n", Ok(None)),
            (
                "just below unlimited",
                "9223372036854767616\n",
                Ok(Some(9223372036854767616)),
            ),
            ("256 MiB", "268435456\n", Ok(Some(268435456))),
            ("no trailing newline", "268435456", Ok(Some(268435456))),
            ("zero", "0\n", Ok(Some(0))),
            ("MAX uppercase", "MAX\n", Err(())),
            ("empty", "", Err(())),
            ("garbage", "lots\n", Err(())),
        ];
        for (name, text, want) in cases {
            assert_eq!(parse_limit(text).map_err(|_| ()), *want, "case {name}");
        }
    }

    #[test]
    fn flat_keyed_cases() {
        let ok = parse_flat_keyed("anon 1\nfile 2\n").unwrap();
        assert_eq!(ok, vec![("anon".into(), 1), ("file".into(), 2)]);
        assert_eq!(
            parse_flat_keyed("anon 1\nfile 2").unwrap().len(),
            2,
            "no trailing newline"
        );
        assert_eq!(parse_flat_keyed("").unwrap(), vec![], "empty");
        assert_eq!(lookup(&ok, "file"), Some(2));
        assert_eq!(lookup(&ok, "kernel"), None, "missing field is None, not 0");
        let err = parse_flat_keyed("anon 1\ngarbage\nfile 2\n").unwrap_err();
        assert_eq!(err.line, 2, "garbage line named");
        let err = parse_flat_keyed("anon 1\nfile -3\n").unwrap_err();
        assert_eq!(err.line, 2, "negative value named");
        assert!(err.message.contains("file"));
        assert_eq!(
            parse_flat_keyed("a 1 2\n").unwrap_err().line,
            1,
            "three fields"
        );
    }

    #[test]
    fn proc_cgroup_cases() {
        let v1 = "9:name=systemd:/\n4:memory:/kubepods.slice/pod7f3a/fxcap/busy\n0::/\n";
        let lines = parse_proc_cgroup(v1).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].controllers, vec!["memory"]);
        assert_eq!(lines[1].path, "/kubepods.slice/pod7f3a/fxcap/busy");
        assert!(lines[2].controllers.is_empty());

        let colons = parse_proc_cgroup("4:memory:/kubepods/pod:abc:1/ctr").unwrap();
        assert_eq!(
            colons[0].path, "/kubepods/pod:abc:1/ctr",
            "colons in path, no trailing newline"
        );

        let multi = parse_proc_cgroup("3:cpu,cpuacct:/x\n").unwrap();
        assert_eq!(multi[0].controllers, vec!["cpu", "cpuacct"]);

        assert_eq!(parse_proc_cgroup("x:memory:/\n").unwrap_err().line, 1);
        assert_eq!(parse_proc_cgroup("0::/\nnonsense\n").unwrap_err().line, 2);
        assert!(parse_proc_cgroup("0::relative").is_err());
    }

    #[test]
    fn mountinfo_cases() {
        let text = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                    32 23 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n\
                    36 31 0:33 /docker/abc /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,cpu,memory";
        let m = parse_mountinfo(text).unwrap();
        assert_eq!(m[0].fs_type, "cgroup");
        assert_eq!(m[0].super_options, vec!["rw", "memory"]);
        assert_eq!(
            m[1].fs_type, "cgroup2",
            "optional fields before the separator"
        );
        assert_eq!(
            m[2].mount_point, "/sys/fs/cgroup/mem ory",
            "\\040 is a space"
        );
        assert_eq!(m[2].root, "/docker/abc");
        assert_eq!((m[1].id, m[1].parent_id), (32, 23), "mount and parent ids");
        for (name, line) in [
            ("id", "x 2 0:1 / /x rw - cgroup2 cgroup2 rw\n"),
            ("parent id", "1 -2 0:1 / /x rw - cgroup2 cgroup2 rw\n"),
            ("empty id", " 2 0:1 / /x rw - cgroup2 cgroup2 rw\n"),
        ] {
            let err =
                parse_mountinfo(&format!("1 0 0:1 / / rw - ext4 /dev/vda rw\n{line}")).unwrap_err();
            assert_eq!(err.line, 2, "{name} not a number: the line is named");
        }
        assert_eq!(unescape_mountinfo("a\\011b\\012c\\134d"), "a\tb\nc\\d");
        assert_eq!(
            unescape_mountinfo("trailing\\04"),
            "trailing\\04",
            "short escape kept"
        );
        assert_eq!(unescape_mountinfo("\\999"), "\\999", "not octal");
        assert_eq!(parse_mountinfo("1 2 3\n").unwrap_err().line, 1);
        assert!(
            parse_mountinfo("1 2 0:1 / /x rw - cgroup\n").is_err(),
            "missing options"
        );
        assert_eq!(
            parse_mountinfo("1 2 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup\n")
                .unwrap_err()
                .line,
            1,
            "no super options: an error, not a panic"
        );
        assert!(parse_mountinfo("      -  ").is_err(), "the proptest case");
        assert_eq!(
            parse_mountinfo("1 2 0:1 / /x rw - cgroup2 cgroup \n").unwrap()[0].super_options,
            vec![""],
            "empty super options"
        );
    }

    #[test]
    fn pressure_cases() {
        let p = parse_pressure(
            "some avg10=1.50 avg60=0.20 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7",
        )
        .unwrap();
        assert_eq!(p.some.avg10, 1.5);
        assert_eq!(p.some.total_us, 12345);
        assert_eq!(p.full.unwrap().total_us, 7);
        assert!(
            parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n")
                .unwrap()
                .full
                .is_none()
        );
        assert!(parse_pressure("").is_err(), "empty");
        assert!(parse_pressure("some avg10=x avg60=0 avg300=0 total=0").is_err());
        assert!(
            parse_pressure("some avg10=0 avg60=0 total=0").is_err(),
            "missing avg300"
        );
        assert!(
            parse_pressure("some avg10=NaN avg60=0 avg300=0 total=0").is_err(),
            "NaN"
        );
        assert!(parse_pressure("half avg10=0 avg60=0 avg300=0 total=0").is_err());
    }

    #[test]
    fn meminfo_cases() {
        let m = parse_meminfo(
            "MemTotal:       24669184 kB\nMemFree: 1 kB\nMemAvailable:   20000000 kB\n",
        )
        .unwrap();
        assert_eq!(m.mem_total, Some(24669184 * 1024));
        assert_eq!(m.mem_available, Some(20000000 * 1024));
        assert_eq!(m.swap_total, None, "no SwapTotal line: unknown, not 0");
        let old = parse_meminfo("MemTotal: 1024 kB").unwrap();
        assert_eq!(old.mem_available, None, "old kernels have no MemAvailable");
        let swap = |t: &str| {
            parse_meminfo(&format!("MemTotal: 1024 kB\n{t}"))
                .unwrap()
                .swap_total
        };
        assert_eq!(swap("SwapTotal:       0 kB\n"), Some(0));
        assert_eq!(
            swap("SwapTotal: 2097148 kB\nSwapFree: 1 kB\n"),
            Some(2097148 * 1024)
        );
        assert!(parse_meminfo("MemTotal: 1 kB\nSwapTotal: x kB\n").is_err());
        assert!(parse_meminfo("MemFree: 1 kB\n").is_err(), "no MemTotal");
        assert!(parse_meminfo("MemTotal: lots kB\n").is_err());
    }

    #[test]
    fn statm_cases() {
        assert_eq!(
            parse_statm_rss("100 25 3 4 0 5 0\n", 4096).unwrap(),
            25 * 4096
        );
        assert_eq!(parse_statm_rss("100 25", 4096).unwrap(), 25 * 4096);
        assert!(parse_statm_rss("100\n", 4096).is_err());
        assert!(parse_statm_rss("", 4096).is_err());
        assert!(
            parse_statm_rss("1 99999999999999999", 4096).is_err(),
            "overflow"
        );
    }

    #[test]
    fn statm_anon_cases() {
        assert_eq!(
            parse_statm_anon("100 25 3 4 0 5 0\n", 4096).unwrap(),
            22 * 4096
        );
        assert_eq!(
            parse_statm_anon("100 3 25", 4096).unwrap(),
            0,
            "never below 0"
        );
        assert!(parse_statm_anon("100 25", 4096).is_err(), "no shared field");
        assert!(parse_statm_anon("100 x 1", 4096).is_err());
        assert!(
            parse_statm_anon("1 99999999999999999 0", 4096).is_err(),
            "overflow"
        );
    }

    /// `cargo test` is deterministic: a fixed seed and case count, whatever
    /// `PROPTEST_*` says, plus the committed cases in `proptest-regressions/`.
    /// `OOMGUARD_PROPTEST_RANDOM=1` makes it a randomized run instead, with
    /// `PROPTEST_CASES` cases (default 100000): see the README's Development section.
    pub(crate) fn config(cases: u32) -> ProptestConfig {
        if std::env::var_os("OOMGUARD_PROPTEST_RANDOM").is_some() {
            let cases = std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(100_000);
            ProptestConfig {
                cases,
                rng_seed: RngSeed::Random,
                ..ProptestConfig::default()
            }
        } else {
            ProptestConfig {
                cases,
                rng_seed: RngSeed::Fixed(0x00_6f_6f_6d_67_75_61_72),
                max_shrink_iters: 4096,
                ..ProptestConfig::default()
            }
        }
    }

    proptest! {
        #![proptest_config(config(2000))]
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse_u64(&s);
            let _ = parse_limit(&s);
            let _ = parse_flat_keyed(&s);
            let _ = parse_proc_cgroup(&s);
            let _ = parse_mountinfo(&s);
            let _ = parse_pressure(&s);
            let _ = parse_meminfo(&s);
            let _ = parse_statm_rss(&s, 4096);
            let _ = unescape_mountinfo(&s);
        }

        #[test]
        fn parsers_never_panic_on_kernel_like_text(
            lines in proptest::collection::vec("[a-z_]{0,12}[ :=]{0,2}[0-9a-z.\\\\\\-/ ]{0,24}", 0..12)
        ) {
            let s = lines.join("\n");
            let _ = parse_flat_keyed(&s);
            let _ = parse_proc_cgroup(&s);
            let _ = parse_mountinfo(&s);
            let _ = parse_pressure(&s);
            let _ = parse_meminfo(&s);
            let _ = unescape_mountinfo(&s);
        }

        #[test]
        fn flat_keyed_round_trips(entries in proptest::collection::vec(("[a-z_]{1,16}", any::<u64>()), 0..40)) {
            let text: String = entries.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
            let parsed = parse_flat_keyed(&text).unwrap();
            prop_assert_eq!(parsed, entries);
        }

        #[test]
        fn mountinfo_ids_and_points_round_trip(
            lines in proptest::collection::vec((any::<u64>(), any::<u64>(), "(/[a-z ]{0,6}){1,4}"), 0..20)
        ) {
            // The kernel escapes a space in a mount point as \040.
            let text: String = lines
                .iter()
                .map(|(id, parent, point)| {
                    format!("{id} {parent} 0:1 / {} rw - cgroup2 cgroup2 rw\n", point.replace(' ', "\\040"))
                })
                .collect();
            let parsed = parse_mountinfo(&text).unwrap();
            let got: Vec<(u64, u64, String)> = parsed
                .into_iter()
                .map(|m| (m.id, m.parent_id, m.mount_point))
                .collect();
            prop_assert_eq!(got, lines);
        }

        #[test]
        fn limit_round_trips(v in any::<u64>()) {
            let parsed = parse_limit(&format!("{v}\n")).unwrap();
            prop_assert_eq!(parsed, if v >= V1_UNLIMITED { None } else { Some(v) });
        }
    }
}
