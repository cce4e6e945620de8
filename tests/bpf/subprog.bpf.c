// bpf-to-bpf calls: a static subprogram called twice and a global function,
// both placed in .text and called from the "socket" section, so each call is
// an R_BPF_64_32 relocation for the loader to resolve. With r1 pointing at
// memory bytes a, b it returns a*a + b*b + 1.
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

static __noinline int square(int x) { return x * x; }

// A global (non-static) function: the kernel verifies it on its own.
__noinline int add_one(int a, int b) { return a + b + 1; }

SEC("socket")
int subprog(struct __sk_buff *skb) {
  const unsigned char *p = (const unsigned char *)skb;
  return add_one(square(p[0]), square(p[1]));
}

char LICENSE[] SEC("license") = "GPL";
