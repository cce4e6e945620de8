// A map pinned by name: it outlives the object and the next load reuses it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_runs SEC(".maps");

SEC("syscall")
int count_run(void *ctx) {
  __u32 k = 0;
  __u64 *v = bpf_map_lookup_elem(&pinned_runs, &k);
  if (!v) return -1;
  return ++*v;
}

char LICENSE[] SEC("license") = "GPL";
