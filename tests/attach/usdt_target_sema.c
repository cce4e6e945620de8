// A USDT probe guarded by a semaphore (sys/sdt.h's _SDT_HAS_SEMAPHORES):
// the semaphore is a counter in section .probes that a tracer increments
// while it is attached; the probe's code runs only when it is non-zero.
// Its own file, because _SDT_HAS_SEMAPHORES applies to every probe of a
// translation unit.
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

__extension__ unsigned short ember_sema_hit_semaphore __attribute__((unused)) __attribute__((section(".probes")));

void ember_sema_fire(int v) {
  if (ember_sema_hit_semaphore) STAP_PROBE1(ember_sema, hit, v);
}

const volatile unsigned short* ember_sema_address(void) { return &ember_sema_hit_semaphore; }
