//! Keep the sampler's own code in memory. In a stall at the limit the kernel
//! reclaims file pages (code included) and faults them back; a sampler whose
//! code is reclaimed stalls with everyone else and can no longer say so, nor
//! end the process (measured: without this, the sampler of a stalled
//! process went silent for tens of seconds). So, once, when the sampler
//! thread starts, this addon's mapped file is locked in memory with `mlock`
//! (under 2 MiB, charged to the cgroup as it already was; within the usual
//! 8 MiB `RLIMIT_MEMLOCK`). The C library is left alone: locking it changed
//! how the kernel treats the stall (it OOM-killed sooner, more often) in
//! ways this package should not cause. Best effort: a refusal is reported
//! in `samplerInfo().pinnedBytes`, never fatal.

use std::sync::Mutex;

/// What was locked, or why not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pinned {
    pub bytes: u64,
    pub error: Option<String>,
}

static PINNED: Mutex<Option<Pinned>> = Mutex::new(None);

/// One line of `/proc/self/maps`: start, end, permissions, inode, path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: usize,
    pub end: usize,
    pub perms: String,
    pub inode: u64,
    pub path: String,
}

/// Parse `/proc/self/maps`; lines that do not parse are skipped (the file is
/// the kernel's, and a mapping we cannot read is one we do not lock).
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(range), Some(perms), Some(_off), Some(_dev), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let path = f.collect::<Vec<_>>().join(" ");
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(inode)) = (
            usize::from_str_radix(a, 16),
            usize::from_str_radix(b, 16),
            inode.parse::<u64>(),
        ) else {
            continue;
        };
        if end > start {
            out.push(Mapping {
                start,
                end,
                perms: perms.to_string(),
                inode,
                path,
            });
        }
    }
    out
}

/// The ranges to lock: every mapping of the file that holds `addr` (this addon).
pub fn ranges(maps: &[Mapping], addr: usize) -> Vec<(usize, usize)> {
    let Some(file) = maps
        .iter()
        .find(|m| m.start <= addr && addr < m.end && m.inode != 0)
    else {
        return Vec::new();
    };
    maps.iter()
        .filter(|m| m.inode == file.inode && m.path == file.path)
        .map(|m| (m.start, m.end))
        .collect()
}

fn lock(ranges: &[(usize, usize)]) -> Result<u64, std::io::Error> {
    let mut n = 0;
    for (s, e) in ranges {
        // SAFETY: mlock only changes residency of mapped memory.
        if unsafe { libc::mlock(*s as *const libc::c_void, e - s) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        n += (e - s) as u64;
    }
    Ok(n)
}

fn unlock(ranges: &[(usize, usize)]) {
    for (s, e) in ranges {
        // SAFETY: as above.
        unsafe { libc::munlock(*s as *const libc::c_void, e - s) };
    }
}

/// Lock the sampler's code once per process; later calls return the first result.
pub fn pin_sampler_code() -> Pinned {
    let mut g = PINNED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = g.as_ref() {
        return p.clone();
    }
    let result = match std::fs::read_to_string("/proc/self/maps") {
        Err(e) => Pinned {
            bytes: 0,
            error: Some(format!("/proc/self/maps: {e}")),
        },
        Ok(text) => {
            let own = ranges(
                &parse_maps(&text),
                pin_sampler_code as fn() -> Pinned as usize,
            );
            match lock(&own) {
                Ok(n) => Pinned {
                    bytes: n,
                    error: None,
                },
                Err(e) => {
                    unlock(&own);
                    Pinned {
                        bytes: 0,
                        error: Some(format!("mlock of this addon's pages: {e}")),
                    }
                }
            }
        }
    };
    *g = Some(result.clone());
    result
}

/// The result of [`pin_sampler_code`], if it ran.
pub fn pinned() -> Option<Pinned> {
    PINNED.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0000000-55d0c0001000 r--p 00000000 fe:00 100 /usr/bin/node
7f0cb01ea000-7f0cb0253000 r--p 00000000 fe:00 5351729                    /opt/app/node_modules/oomguard/oomguard.linux-x64-gnu.node
7f0cb0253000-7f0cb038c000 r-xp 00068000 fe:00 5351729                    /opt/app/node_modules/oomguard/oomguard.linux-x64-gnu.node
7f0cb038c000-7f0cb0398000 r--p 001a0000 fe:00 5351729                    /opt/app/node_modules/oomguard/oomguard.linux-x64-gnu.node
7f0cb0398000-7f0cb039a000 rw-p 001ab000 fe:00 5351729                    /opt/app/node_modules/oomguard/oomguard.linux-x64-gnu.node
7f0cb039a000-7f0cb03a0000 rw-p 00000000 00:00 0
7f0cb1c1e000-7f0cb1c44000 r--p 00000000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f0cb1c44000-7f0cb1d9a000 r-xp 00026000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f0cb1d9a000-7f0cb1ded000 r--p 0017c000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
garbage line
7fff0000-7ffe0000 r--p 00000000 00:00 0 [reversed]
7ffd1000-7ffd2000 r-xp 00000000 00:00 0                  [vdso]
";

    #[test]
    fn maps_and_ranges() {
        let maps = parse_maps(MAPS);
        assert_eq!(maps.len(), 10, "bad and empty ranges are skipped");
        assert_eq!(
            maps[1].path,
            "/opt/app/node_modules/oomguard/oomguard.linux-x64-gnu.node"
        );
        let own = ranges(&maps, 0x7f0cb0260000);
        assert_eq!(own.len(), 4, "every segment of the addon's file: {own:x?}");
        assert_eq!(own[0], (0x7f0cb01ea000, 0x7f0cb0253000));
        assert!(ranges(&maps, 0x1234).is_empty(), "no mapping");
        assert!(
            ranges(&maps, 0x7f0cb039b000).is_empty(),
            "anonymous memory is no file"
        );
        assert!(ranges(&maps, 0x7ffd1500).is_empty(), "nor is the vDSO");
    }

    #[test]
    fn pins_the_live_process() {
        let p = pin_sampler_code();
        // A limit of RLIMIT_MEMLOCK below this addon's size is possible: then an error says so.
        assert!(p.bytes > 0 || p.error.is_some(), "{p:?}");
        assert_eq!(pin_sampler_code(), p, "once per process");
    }
}
