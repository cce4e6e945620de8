// USDT probes with 0 to 6 arguments of every size, signed and unsigned, a
// constant, and (in usdt_target_sema.c) a probe with a semaphore, for
// tests/usdt_test.cpp and tests/attach_symbols_test.cpp. Built as a PIE and
// a non-PIE executable and as a shared library (EMBER_USDT_LIBRARY).
#include <stdint.h>
#include <sys/sdt.h>

void ember_sema_fire(int v);
const volatile unsigned short* ember_sema_address(void);

// Volatile inputs keep the compiler from folding arguments into constants,
// so they arrive in registers and stack slots.
static volatile int64_t big = -1234567890123;
static volatile uint32_t word = 4000000000u;
static volatile int16_t half = -300;
static volatile uint8_t byte = 200;

__attribute__((noinline)) int ember_usdt_fire(int n) {
  int8_t c = (int8_t)(n - 100);
  DTRACE_PROBE(ember, zero);
  DTRACE_PROBE1(ember, one, n);
  DTRACE_PROBE2(ember, two, c, (uint16_t)(n + 60000));
  DTRACE_PROBE3(ember, three, (int64_t)big, (uint32_t)word, &n);
  DTRACE_PROBE4(ember, four, (int16_t)half, (uint8_t)byte, (int64_t)n * 3, (uint64_t)big);
  DTRACE_PROBE6(ember, six, (int8_t)byte, (uint16_t)half, (int32_t)word, (uint64_t)n, (int64_t)big, c);
  STAP_PROBE1(ember, constant, 42);
  ember_sema_fire(n);
  return n;
}

// A plain function for the symbol tests: its address is known by dlsym.
__attribute__((noinline)) int ember_usdt_plain_function(int a) { return a * 2 + (int)byte; }

// A local function: in .symtab only (gone when the file is stripped).
__attribute__((noinline)) static int ember_usdt_local_function(int a) { return a - (int)byte; }
int (*volatile ember_usdt_local_pointer)(int) = ember_usdt_local_function;

#ifndef EMBER_USDT_LIBRARY
int main(int argc, char** argv) {
  (void)argv;
  return ember_usdt_fire(argc) + ember_usdt_plain_function(argc) + ember_usdt_local_pointer(argc) == 0;
}
#endif
