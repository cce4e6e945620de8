// The target of tests/trace_test.cpp's lifecycle tests (`ember trace -p`
// attaching, detaching and attaching again; fork and exec): a PIE that runs
// until told to stop, doing what stdin asks, one command a line:
//
//   main A N        main thread: ember_workload_target(i, 2, 3, 4, 5, 6), i = A..A+N-1;
//                   prints "main SUM" (SUM: the values returned)
//   thread A N      the same in a new thread, joined: "thread SUM"
//   forkexec A N B  a child calls A..A+N-1, then execs this program with
//                   --run B N (which calls B..B+N-1 and prints "run SUM");
//                   the parent waits: "child STATUS"
//   block           a thread enters ember_workload_wait(7), which prints
//                   "waiting" and blocks until "release"
//   release         lets it return: it prints "released VALUE" (7 + 'x')
//   spin A          a thread calls ember_workload_target(A, 2, 3, 4, 5, 6)
//                   in a loop until "stop": prints "spinning" once it runs
//   stop            ends it: "stopped OK" when every call returned A + 20
//   quit            exits 0 (so does end of input)
//
// Every line is written with one write() (threads never interleave).
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

volatile long sink;

__attribute__((noinline)) long ember_workload_target(long a, long b, long c, long d, long e, long f) {
  __asm__ volatile("" ::: "memory");  // keeps the body (and its arguments) as written
  return a + b + c + d + e + f;
}

static long call_range(long first, long n) {
  long sum = 0;
  for (long i = first; i < first + n; ++i) sum += sink = ember_workload_target(i, 2, 3, 4, 5, 6);
  return sum;
}

static void say(const char* what, long value) {
  char line[64];
  int len = snprintf(line, sizeof line, "%s %ld\n", what, value);
  if (write(1, line, (size_t)len) != len) _exit(4);
}

static int block_pipe[2] = {-1, -1};
static pthread_t blocker;

__attribute__((noinline)) long ember_workload_wait(long tag) {
  say("waiting", tag);
  char c;
  if (read(block_pipe[0], &c, 1) != 1) return -1;
  __asm__ volatile("" ::: "memory");
  return tag + c;
}

static void* blocker_main(void* arg) {
  say("released", ember_workload_wait((long)(size_t)arg));
  return NULL;
}

static pthread_t spinner;
static volatile int spin_stop;
static long spin_arg;

static void* spinner_main(void* arg) {
  (void)arg;
  long ok = 1;
  say("spinning", spin_arg);
  while (!spin_stop)
    if (ember_workload_target(spin_arg, 2, 3, 4, 5, 6) != spin_arg + 20) ok = 0;
  return (void*)ok;
}

struct range {
  long first, n, sum;
};

static void* thread_main(void* arg) {
  struct range* r = arg;
  r->sum = call_range(r->first, r->n);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc == 4 && !strcmp(argv[1], "--run")) {
    say("run", call_range(atol(argv[2]), atol(argv[3])));
    return 0;
  }
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    long a = 0, n = 0, b = 0;
    if (sscanf(line, "main %ld %ld", &a, &n) == 2) {
      say("main", call_range(a, n));
    } else if (sscanf(line, "thread %ld %ld", &a, &n) == 2) {
      struct range r = {a, n, 0};
      pthread_t t;
      if (pthread_create(&t, NULL, thread_main, &r) != 0) return 5;
      pthread_join(t, NULL);
      say("thread", r.sum);
    } else if (sscanf(line, "forkexec %ld %ld %ld", &a, &n, &b) == 3) {
      pid_t pid = fork();
      if (pid == 0) {
        call_range(a, n);
        char first[32], count[32];
        snprintf(first, sizeof first, "%ld", b);
        snprintf(count, sizeof count, "%ld", n);
        execl("/proc/self/exe", argv[0], "--run", first, count, (char*)NULL);
        _exit(127);
      }
      int st = 0;
      waitpid(pid, &st, 0);
      say("child", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    } else if (!strncmp(line, "block", 5)) {
      if (pipe(block_pipe) != 0 || pthread_create(&blocker, NULL, blocker_main, (void*)7) != 0) return 6;
    } else if (!strncmp(line, "release", 7)) {
      if (write(block_pipe[1], "x", 1) != 1) return 7;
      pthread_join(blocker, NULL);
    } else if (sscanf(line, "spin %ld", &a) == 1) {
      spin_arg = a;
      spin_stop = 0;
      if (pthread_create(&spinner, NULL, spinner_main, NULL) != 0) return 8;
    } else if (!strncmp(line, "stop", 4)) {
      void* ok = NULL;
      spin_stop = 1;
      pthread_join(spinner, &ok);
      say("stopped", (long)(size_t)ok);
    } else if (!strncmp(line, "quit", 4)) {
      return 0;
    }
  }
  return 0;
}
