# The fill of watch-cost.js (d): fault in fresh anonymous memory at RATE
# bytes per second until the cgroup's working set (usage - total_inactive_file
# of the cgroup directory CGROUP) is TARGET bytes, then hold it until stdin
# closes. Each 1 MiB is populated by the kernel in one call
# (MADV_POPULATE_WRITE, Linux 5.14+; else touched page by page): measured
# here 3.2 GiB/s, where touching 4 KiB pages from Python reaches 1.3 GiB/s
# and huge pages vary from 0.5 to 4 GiB/s with the machine's fragmentation.
# Prints one line: FILL {"bytes", "seconds", "rate"}.
#   python3 fill.py CGROUP TARGET RATE
import json, mmap, os, re, sys, time

MADV_POPULATE_WRITE = 23

cgroup, target, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
usage = int(open(os.path.join(cgroup, 'memory.usage_in_bytes')).read())
inactive = re.search(r'^total_inactive_file (\d+)$', open(os.path.join(cgroup, 'memory.stat')).read(), re.M)
size = max(0, target - (usage - (int(inactive.group(1)) if inactive else 0)))
step = 1 << 20
m = mmap.mmap(-1, size + step, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)


def populate(off):
    try:
        m.madvise(MADV_POPULATE_WRITE, off, step)
    except (AttributeError, OSError):
        for i in range(off, off + step, 4096):
            m[i] = 1


t0 = time.perf_counter()
done = 0
while done < size:
    # Keep to the schedule, one 1 MiB step at a time.
    if done <= (time.perf_counter() - t0) * rate:
        populate(done)
        done += step
seconds = time.perf_counter() - t0
print('FILL ' + json.dumps({'bytes': done, 'seconds': seconds, 'rate': done / seconds}), flush=True)
sys.stdin.read()
