// The target of tests/trace_exec_test.cpp (`ember trace --follow-forks` and
// exec): a PIE that does known work of its own, then runs another program.
//
//   exec_workload fork PROGRAM [ARGS]   forks; the child execs PROGRAM; the
//                                       parent waits and prints "child STATUS"
//   exec_workload exec PROGRAM [ARGS]   execs PROGRAM itself (same pid)
//   exec_workload wait-exec PROGRAM [ARGS]  reads one byte from stdin (a
//                                       tracer attaching with -p), then as exec
//
// Its own work, first: ember_exec_parent(1001..1003) and strtol("7") four
// times (a libc function the test probes; the exec'd program calls it too).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

volatile long sink;

__attribute__((noinline)) long ember_exec_parent(long a) {
  __asm__ volatile("" ::: "memory");  // keeps the body (and its argument) as written
  return a * 2;
}

static void say(const char* what, long value) {
  char line[64];
  int len = snprintf(line, sizeof line, "%s %ld\n", what, value);
  if (write(1, line, (size_t)len) != len) _exit(4);
}

int main(int argc, char** argv) {
  int fork_mode = argc >= 3 && !strcmp(argv[1], "fork");
  int wait_mode = argc >= 3 && !strcmp(argv[1], "wait-exec");
  if (argc < 3 || (!fork_mode && !wait_mode && strcmp(argv[1], "exec") != 0)) {
    fprintf(stderr, "usage: exec_workload fork|exec|wait-exec PROGRAM [ARGS]\n");
    return 2;
  }
  char byte;
  if (wait_mode && read(0, &byte, 1) != 1) return 5;
  for (long i = 1001; i <= 1003; ++i) sink = ember_exec_parent(i);
  const char* volatile seven = "7";
  for (int i = 0; i < 4; ++i) sink = strtol(seven, NULL, 10);
  if (!fork_mode) {
    execv(argv[2], argv + 2);
    _exit(127);
  }
  pid_t pid = fork();
  if (pid < 0) return 3;
  if (pid == 0) {
    execv(argv[2], argv + 2);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  say("child", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  return 0;
}
