// What an object loader must handle beyond code: a BTF-defined array map in
// .maps, a helper call (bpf_map_lookup_elem), global data in .rodata, .data
// and .bss (each reached through an ld_imm64 with an R_BPF_64_64 relocation),
// and a license section.
#include <linux/bpf.h>
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
