#!/bin/sh
# Runs in the cgroup v2 VM's container mode (oom-v2.test.js): the runner
# started it as the container's first process, in its own cgroup namespace,
# with cgroup2 read-only at /sys/fs/cgroup (its own cgroup, memory.max set by
# the runner) and HOST_DIR shared over 9p at /host, where every result is
# written (the guest's files are gone when it powers off).
#
#   sh oom-v2-container.sh PLAN TIMEOUT_S
#
# PLAN: one run a line, "ID KIND SCENARIO RATE PREFILL". KIND `oom` runs
# oom-child.js in this cgroup until the kernel kills it; `sampler` runs
# sampler-v2.js. Nothing can create a cgroup here, so the runs take turns in
# the one cgroup, as a restarted container's processes do; this shell is
# tiny next to node, so the OOM killer picks the child. For each ID:
# out/ID.{stdout,stderr,code,events-before,events-after} and, for `oom`,
# out/ID.{marker,last-words}. A run still going after TIMEOUT_S gets SIGTERM
# (exit 143, never the 137 of an OOM kill).

set -u
out=/host/out
mkdir -p "$out"
cat /sys/fs/cgroup/memory.max > "$out/memory.max"
while read -r id kind scenario rate prefill; do
  [ -n "$id" ] || continue
  cat /sys/fs/cgroup/memory.events > "$out/$id.events-before"
  : > "$out/$id.marker"
  case "$kind" in
    oom) timeout "$2" node oom-child.js "$scenario" "$rate" "$out/$id.marker" "$out/$id.last-words" /host "$prefill" < /dev/null > "$out/$id.stdout" 2> "$out/$id.stderr" ;;
    sampler) timeout "$2" node sampler-v2.js /host < /dev/null > "$out/$id.stdout" 2> "$out/$id.stderr" ;;
    *) echo "unknown kind $kind" > "$out/$id.stderr"; false ;;
  esac
  echo $? > "$out/$id.code"
  cat /sys/fs/cgroup/memory.events > "$out/$id.events-after"
done < "$1"
