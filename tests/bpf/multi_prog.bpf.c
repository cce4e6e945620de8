// Two programs in one object, in different sections, sharing a static
// subprogram in .text and a function pointer passed to a callback-style
// helper-free call: the loader must link each program with its own copy of
// what it reaches.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __noinline int twice(int x) { return 2 * x; }
static __noinline int thrice(int x) { return 3 * x; }

SEC("xdp")
int first(struct xdp_md *ctx) {
  const unsigned char *p = (const unsigned char *)ctx;
  return twice(p[0]) + thrice(p[1]);
}

SEC("tc")
int second(struct __sk_buff *skb) {
  const unsigned char *p = (const unsigned char *)skb;
  return thrice(p[0]);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
