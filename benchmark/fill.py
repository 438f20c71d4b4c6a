# The fill of watch-cost.js (d): touch fresh anonymous memory at RATE bytes
# per second until the cgroup's working set (usage - total_inactive_file of
# the cgroup directory CGROUP) is TARGET bytes, in transparent huge pages
# where the kernel gives them (madvise), so the rate is not limited by 4 KiB
# page faults; then hold it until stdin closes. Prints one line:
# FILL {"bytes", "seconds", "rate"}.
#   python3 fill.py CGROUP TARGET RATE
import json, mmap, os, re, sys, time

cgroup, target, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
usage = int(open(os.path.join(cgroup, 'memory.usage_in_bytes')).read())
inactive = re.search(r'^total_inactive_file (\d+)$', open(os.path.join(cgroup, 'memory.stat')).read(), re.M)
size = max(0, target - (usage - (int(inactive.group(1)) if inactive else 0)))
step = 2 << 20
m = mmap.mmap(-1, size + step, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
try:
    m.madvise(mmap.MADV_HUGEPAGE)
except (AttributeError, OSError):
    pass
t0 = time.perf_counter()
done = 0
while done < size:
    # Catch up with the schedule, one huge page (or 512 small ones) at a time.
    due = min(size, int((time.perf_counter() - t0) * rate) + step)
    while done < due:
        for i in range(done, min(done + step, size), 4096):
            m[i] = 1
        done += step
seconds = time.perf_counter() - t0
print('FILL ' + json.dumps({'bytes': done, 'seconds': seconds, 'rate': done / seconds}), flush=True)
sys.stdin.read()
