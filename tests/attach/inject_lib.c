// The library tests/inject_test.cpp injects: its constructor and destructor
// append a line to /tmp/ember_inject_<pid>.log (the target's environment
// cannot be changed after it started, so the path is derived from the pid),
// and it exports a function the test calls remotely.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void note(const char* what) {
  char path[64], line[64];
  snprintf(path, sizeof path, "/tmp/ember_inject_%d.log", (int)getpid());
  snprintf(line, sizeof line, "%s %d\n", what, (int)getpid());
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (write(fd, line, strlen(line)) < 0) {
  }
  close(fd);
}

__attribute__((constructor)) static void on_load(void) { note("ctor"); }
__attribute__((destructor)) static void on_unload(void) { note("dtor"); }

// a + 2b + 3c + 4d + 5e + 6f, or -1 if the caller's stack was not aligned
// as the ABI wants. Built with frame pointers: after `push rbp; mov rbp, rsp`
// rbp is 16-byte aligned when the call was; the empty asm hides that from
// the compiler, which would otherwise assume it and fold the test away.
__attribute__((noinline)) long ember_inject_sum6(long a, long b, long c, long d, long e, long f) {
  uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
  __asm__ volatile("" : "+r"(fp));
  if ((fp & 15) != 0) return -1;
  return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f;
}
