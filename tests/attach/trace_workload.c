// The program `ember trace` traces in tests/trace_test.cpp: a PIE that calls
// a noinline function a known number of times with known arguments,
// allocates known sizes, and, as asked, starts threads, forks once and exits
// with a given status.
//
//   trace_workload [--calls N] [--threads T] [--fork] [--malloc SIZE COUNT]
//                  [--exit CODE] [--wait]
//
// Main thread: ember_workload_target(i, 2, 3, 4, 5, 6) for i = 1..N, whose
// value is the sum. Each thread t (1..T): the same with i = 100*t + 1 ...
// The forked child: i = 1001..1000+N, then it exits 0 (the parent waits).
// --wait reads one byte from stdin first (a tracer attaching with -p).
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static long calls = 0;
volatile long sink;

__attribute__((noinline)) long ember_workload_target(long a, long b, long c, long d, long e, long f) {
  __asm__ volatile("" ::: "memory");  // keeps the body (and its arguments) as written
  return a + b + c + d + e + f;
}

static void call_range(long first) {
  for (long i = first; i < first + calls; ++i) sink = ember_workload_target(i, 2, 3, 4, 5, 6);
}

static void* thread_main(void* arg) {
  call_range(100 * (long)(size_t)arg + 1);
  return NULL;
}

static void allocate(size_t size, long count) {
  void* volatile* blocks = calloc((size_t)count, sizeof(void*));
  for (long i = 0; i < count; ++i) {
    blocks[i] = malloc(size);
    memset(blocks[i], 1, 1);
  }
  for (long i = 0; i < count; ++i) free(blocks[i]);
  free((void*)blocks);
}

int main(int argc, char** argv) {
  long threads = 0, malloc_count = 0;
  size_t malloc_size = 0;
  int do_fork = 0, exit_code = 0, wait_stdin = 0;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--calls") && i + 1 < argc)
      calls = atol(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = atol(argv[++i]);
    else if (!strcmp(argv[i], "--fork"))
      do_fork = 1;
    else if (!strcmp(argv[i], "--malloc") && i + 2 < argc) {
      malloc_size = (size_t)atol(argv[++i]);
      malloc_count = atol(argv[++i]);
    } else if (!strcmp(argv[i], "--exit") && i + 1 < argc)
      exit_code = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--wait"))
      wait_stdin = 1;
    else {
      fprintf(stderr, "trace_workload: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (wait_stdin) {
    char c;
    if (read(0, &c, 1) != 1) return 3;
  }
  call_range(1);
  if (malloc_count) allocate(malloc_size, malloc_count);
  pthread_t ts[64];
  if (threads > 64) threads = 64;
  for (long t = 0; t < threads; ++t) pthread_create(&ts[t], NULL, thread_main, (void*)(size_t)(t + 1));
  for (long t = 0; t < threads; ++t) pthread_join(ts[t], NULL);
  if (do_fork) {
    pid_t pid = fork();
    if (pid == 0) {
      call_range(1001);
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 4;
  }
  return exit_code;
}
