// A bounded loop (accepted by kernels since 5.3): sums the first 64 bytes of
// the context. Ember runs it with r1 pointing at the --mem bytes, so
// `ember run sum_loop.bpf.o --mem <64 bytes>` prints their sum.
//
// tests/CMakeLists.txt runs plain `clang -target bpf`, which does not search
// Debian's multiarch directory where <asm/types.h> (needed by <linux/bpf.h>)
// lives; then the few kernel types used here are declared by hand.
#if __has_include(<asm/types.h>)
#include <linux/bpf.h>
#else
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;
typedef __u32 __wsum;
struct __sk_buff;
#endif
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
