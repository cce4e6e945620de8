// The workload of examples/malloc_hist.bpf.c: a thread named "alloc_worker"
// (the name the probe program counts) mallocs a fixed table of sizes, frees
// all but a known few, and leaves those outstanding until the process
// exits; then the main thread prints what the probes should have seen.
//
//   ember trace examples/malloc_hist.bpf.o --hist sizes --hist live -- ./alloc_workload
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

struct batch {
  size_t size;
  int count, keep;  // the first `keep` blocks stay allocated
};

static const struct batch kBatches[] = {
    {16, 100, 10}, {100, 50, 5}, {1000, 20, 4}, {5000, 10, 2}, {100000, 4, 0}, {1 << 20, 2, 1},
};
#define NBATCHES (sizeof kBatches / sizeof kBatches[0])
#define MAX_BLOCKS 256

// Escaped to a global, so that the compiler keeps every malloc/free pair.
void* volatile blocks[MAX_BLOCKS];

static void* worker(void* arg) {
  (void)arg;
  prctl(PR_SET_NAME, "alloc_worker", 0, 0, 0);
  int n = 0;
  for (size_t b = 0; b < NBATCHES; ++b) {
    int first = n;
    for (int i = 0; i < kBatches[b].count; ++i) {
      blocks[n] = malloc(kBatches[b].size);
      memset(blocks[n], 0xab, 1);
      ++n;
    }
    for (int i = kBatches[b].keep; i < kBatches[b].count; ++i) free(blocks[first + i]);
  }
  return NULL;
}

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, NULL) != 0) return 1;
  unsigned long mallocs = 0, outstanding = 0, bytes = 0;
  for (size_t b = 0; b < NBATCHES; ++b) {
    printf("alloc_workload: %d x malloc(%zu), %d left outstanding\n", kBatches[b].count, kBatches[b].size,
           kBatches[b].keep);
    mallocs += (unsigned long)kBatches[b].count;
    outstanding += (unsigned long)kBatches[b].keep;
    bytes += kBatches[b].keep * kBatches[b].size;
  }
  printf("alloc_workload: expect %lu mallocs, %lu outstanding (%lu bytes)\n", mallocs, outstanding, bytes);
  return 0;
}
