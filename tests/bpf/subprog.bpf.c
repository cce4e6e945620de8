// bpf-to-bpf calls: a static subprogram called twice and a global function,
// both placed in .text and called from the "socket" section, so each call is
// an R_BPF_64_32 relocation for the loader to resolve. With r1 pointing at
// memory bytes a, b it returns a*a + b*b + 1.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __noinline int square(int x) { return x * x; }

// A global (non-static) function: the kernel verifies it on its own.
__noinline int add_one(int a, int b) { return a + b + 1; }

SEC("socket")
int subprog(struct __sk_buff *skb) {
  const unsigned char *p = (const unsigned char *)skb;
  return add_one(square(p[0]), square(p[1]));
}

char LICENSE[] SEC("license") = "GPL";
