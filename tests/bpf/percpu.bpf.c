// Per-CPU array and hash: each run adds to this CPU's value.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u64);
} per_cpu_array SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u32);
} per_cpu_hash SEC(".maps");

SEC("syscall")
int add_here(__u64 *by) {
  __u32 k = 1;
  __u64 *v = bpf_map_lookup_elem(&per_cpu_array, &k);
  if (v) *v += *by;
  __u32 *h = bpf_map_lookup_elem(&per_cpu_hash, &k);
  if (h) {
    *h += 1;
  } else {
    __u32 one = 1;
    bpf_map_update_elem(&per_cpu_hash, &k, &one, BPF_ANY);
  }
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
