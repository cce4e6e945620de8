// An LRU hash that never fills up: inserts past max_entries evict.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 128);
  __type(key, __u32);
  __type(value, __u32);
} recent SEC(".maps");

SEC("syscall")
int remember(__u32 *first) {
  int failed = 0;
  for (__u32 i = 0; i < 64; i++) {
    __u32 k = *first + i;
    failed += bpf_map_update_elem(&recent, &k, &k, BPF_ANY) != 0;
  }
  return failed;
}

char LICENSE[] SEC("license") = "GPL";
