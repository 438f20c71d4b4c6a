// The floor under the sampler's cost, for watch-cost.js (a): a thread that
// only waits with ppoll for INTERVAL_MS and then preads each FILE once from
// offset 0, as a usage-only tick does (the usage and the limit files it
// reads), no logic at all. Prints the thread's time on a CPU from its
// schedstat (ns) over the run.
//
//   floor INTERVAL_MS SECONDS [FILE...]
//
// One line on stdout: FLOOR {"ns": N, "seconds": S, "wakeups": W, "files": F}
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long long run_ns(void) {
  unsigned long long ns = 0;
  FILE *f = fopen("/proc/thread-self/schedstat", "r");
  if (!f || fscanf(f, "%llu", &ns) != 1) exit(2);
  fclose(f);
  return (long long)ns;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  double ms = atof(argv[1]), seconds = atof(argv[2]);
  int nfiles = argc - 3;
  int fds[64];
  if (nfiles > 64 || ms <= 0) return 2;
  for (int i = 0; i < nfiles; i++) {
    fds[i] = open(argv[3 + i], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fds[i] < 0) { perror(argv[3 + i]); return 1; }
  }
  struct timespec wait = { (time_t)(ms / 1000), (long)((ms - 1000 * (long)(ms / 1000)) * 1e6) };
  long n = (long)(seconds * 1000 / ms);
  if (n < 1) n = 1;
  char buf[4096];
  double t0 = now_s();
  long long c0 = run_ns();
  for (long k = 0; k < n; k++) {
    ppoll(NULL, 0, &wait, NULL);
    for (int i = 0; i < nfiles; i++)
      if (pread(fds[i], buf, sizeof buf, 0) < 0) { perror(argv[3 + i]); return 1; }
  }
  long long c1 = run_ns();
  printf("FLOOR {\"ns\": %lld, \"seconds\": %f, \"wakeups\": %ld, \"files\": %d}\n", c1 - c0, now_s() - t0, n, nfiles);
  return 0;
}
