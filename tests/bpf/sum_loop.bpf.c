// A bounded loop (accepted by kernels since 5.3): sums the first 64 bytes of
// the context. Ember runs it with r1 pointing at the --mem bytes, so
// `ember run sum_loop.bpf.o --mem <64 bytes>` prints their sum.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define BUF_LEN 64

SEC("socket")
int sum_loop(struct __sk_buff *skb) {
  const unsigned char *p = (const unsigned char *)skb;
  unsigned int sum = 0;
  // Keep the loop a loop (a backward jump) instead of 64 unrolled loads.
#pragma clang loop unroll(disable)
  for (int i = 0; i < BUF_LEN; i++) sum += p[i];
  return sum;
}

char LICENSE[] SEC("license") = "GPL";
