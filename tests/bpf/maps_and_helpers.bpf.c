// What an object loader must handle beyond code: a BTF-defined array map in
// .maps, a helper call (bpf_map_lookup_elem), global data in .rodata, .data
// and .bss (each reached through an ld_imm64 with an R_BPF_64_64 relocation),
// and a license section.
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
enum { BPF_MAP_TYPE_ARRAY = 2 };
#endif
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

const volatile __u64 scale = 3;  // .rodata: set by the loader before loading
__u64 total = 7;                 // .data
__u64 calls;                     // .bss

SEC("socket")
int maps_and_helpers(struct __sk_buff *skb) {
  __u32 key = 1;
  __u64 *slot = bpf_map_lookup_elem(&counters, &key);
  calls++;
  if (!slot) return 0;
  *slot += scale;
  total += *slot;
  return (int)total;
}

char LICENSE[] SEC("license") = "GPL";
