// A program with USDT probes (<sys/sdt.h>, Debian's systemtap-sdt-dev), for
// examples/usdt_count.bpf.c. It "serves" 50 requests of known sizes: the
// probe usdt_app:request(id, size) fires for each, and at the end
// usdt_app:done(requests, bytes) fires only while a tracer is attached: its
// arguments cost a loop to compute, so the program asks its semaphore
// first, as real programs do for expensive probes.
//
//   ember trace examples/usdt_count.bpf.o --hist sizes
//     -e usdt:./usdt_app:usdt_app:request=on_request
//     -e usdt:./usdt_app:usdt_app:done=on_done -- ./usdt_app
//   (one line)
//
// Sizes cycle through 100, 100, 600, 100, 4096: 30 x 100, 10 x 600 and
// 10 x 4096 bytes, 49960 in all.

// Every probe of this file gets a semaphore (a counter in section .probes
// that tracers raise while attached), named PROVIDER_NAME_semaphore.
#define _SDT_HAS_SEMAPHORES 1
#include <stdio.h>
#include <sys/sdt.h>

__extension__ unsigned short usdt_app_request_semaphore __attribute__((unused, section(".probes")));
__extension__ unsigned short usdt_app_done_semaphore __attribute__((unused, section(".probes")));

#define REQUESTS 50
static const unsigned long kSizes[] = {100, 100, 600, 100, 4096};

// Volatile, so that the probes' arguments stay run-time values.
static volatile unsigned long served_bytes;

__attribute__((noinline)) static void serve(int id, unsigned long size) {
  DTRACE_PROBE2(usdt_app, request, id, size);
  served_bytes += size;
}

int main(void) {
  for (int id = 1; id <= REQUESTS; ++id) serve(id, kSizes[(id - 1) % 5]);
  int traced = usdt_app_done_semaphore != 0;
  if (traced) {
    // Only worth computing when someone listens.
    unsigned long bytes = 0;
    for (int id = 1; id <= REQUESTS; ++id) bytes += kSizes[(id - 1) % 5];
    DTRACE_PROBE2(usdt_app, done, REQUESTS, bytes);
  }
  printf("usdt_app: %d requests, %lu bytes; the done probe's semaphore was %s\n", REQUESTS, served_bytes,
         traced ? "raised (traced)" : "zero (not traced)");
  return 0;
}
