// The target of tests/inject_test.cpp: a process that computes, blocks in
// read() or nanosleep(), and reports on stdout one line at a time, so that
// the test can check that an injected library changes nothing it computes.
//
//   inject_target single   main thread computes: "C0 <n> <hash> <double>"
//   inject_target threads  4 threads compute (C1..C4); main waits in pthread_join
//   inject_target read     "ready", then main blocks in read(0): "R <rc> <errno> <data>", then computes
//   inject_target sleep    "ready", then nanosleep(3 s): "S <rc> <errno>", then computes
//   inject_target mixed    C1 computes, a reader (as `read`), a sleeper (as `sleep`); main computes (C0)
//   inject_target dllock   a thread keeps the dynamic loader's lock (inside dl_iterate_phdr, which dlopen
//                          also needs) while it sleeps 2 s at a time; main computes (C0)
#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void say(const char* line) {
  // One write per line: lines from several threads never interleave.
  size_t len = strlen(line);
  if (write(1, line, len) != (ssize_t)len) _exit(3);
}

// A hash in integer registers and a double in an SSE register across the
// loop: a call that clobbered either (registers not restored) shows.
static void compute(int id) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)id;
  double d = 1.0 + id;
  for (uint64_t n = 0;; ++n) {
    for (int i = 0; i < 300000; ++i) {
      h = (h ^ (uint64_t)i) * 1099511628211ull;
      d = d * 0.9999999 + (double)(h & 7) * 1e-3;
    }
    char line[128];
    snprintf(line, sizeof line, "C%d %llu %016llx %.17g\n", id, (unsigned long long)n, (unsigned long long)h,
             d);
    say(line);
  }
}

static void* compute_thread(void* arg) {
  compute((int)(intptr_t)arg);
  return NULL;
}

static void do_read(void) {
  char buf[64] = {0};
  ssize_t rc = read(0, buf, sizeof buf - 1);
  int err = rc < 0 ? errno : 0;
  if (rc > 0 && buf[rc - 1] == '\n') buf[rc - 1] = 0;
  char line[160];
  snprintf(line, sizeof line, "R %zd %d %s\n", rc, err, buf);
  say(line);
}

static void do_sleep(void) {
  struct timespec ts = {3, 0};
  int rc = nanosleep(&ts, NULL);
  char line[64];
  snprintf(line, sizeof line, "S %d %d\n", rc, rc < 0 ? errno : 0);
  say(line);
}

static void* read_thread(void* arg) {
  (void)arg;
  do_read();
  return NULL;
}

static void* sleep_thread(void* arg) {
  (void)arg;
  do_sleep();
  return NULL;
}

// Sleeps with the loader's write lock held: dlopen, which takes the same
// lock to add a library, waits until the sleep ends.
static int hold_loader_lock(struct dl_phdr_info* info, size_t size, void* data) {
  (void)info, (void)size, (void)data;
  struct timespec ts = {2, 0};
  nanosleep(&ts, NULL);
  return 1;  // stop iterating: one sleep per call
}

static void* loader_lock_thread(void* arg) {
  (void)arg;
  say("locking\n");
  for (;;) {
    dl_iterate_phdr(hold_loader_lock, NULL);
    // A moment without the lock: a waiting dlopen gets it (glibc's mutex is
    // not fair; retaking it at once could starve the waiter for rounds).
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

static void start(void* (*fn)(void*), void* arg) {
  pthread_t t;
  if (pthread_create(&t, NULL, fn, arg) != 0) _exit(4);
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "single";
  if (strcmp(mode, "single") == 0) {
    compute(0);
  } else if (strcmp(mode, "threads") == 0) {
    pthread_t t[4];
    for (int i = 0; i < 4; ++i)
      if (pthread_create(&t[i], NULL, compute_thread, (void*)(intptr_t)(i + 1)) != 0) return 4;
    pthread_join(t[0], NULL);
  } else if (strcmp(mode, "read") == 0) {
    say("ready\n");
    do_read();
    compute(0);
  } else if (strcmp(mode, "sleep") == 0) {
    say("ready\n");
    do_sleep();
    compute(0);
  } else if (strcmp(mode, "mixed") == 0) {
    start(compute_thread, (void*)(intptr_t)1);
    start(read_thread, NULL);
    start(sleep_thread, NULL);
    say("ready\n");
    compute(0);
  } else if (strcmp(mode, "dllock") == 0) {
    start(loader_lock_thread, NULL);
    compute(0);
  } else {
    fprintf(stderr, "inject_target: unknown mode %s\n", mode);
    return 2;
  }
  return 0;
}
