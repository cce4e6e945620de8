// A counter guarded by a bpf_spin_lock inside a hash map value.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct guarded {
  struct bpf_spin_lock lock;
  __u32 pad;
  __u64 count;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, struct guarded);
} counters SEC(".maps");

SEC("syscall")
int locked_add(__u64 *by) {
  __u32 k = 1;
  struct guarded init = {};
  bpf_map_update_elem(&counters, &k, &init, BPF_NOEXIST);
  struct guarded *g = bpf_map_lookup_elem(&counters, &k);
  if (!g) return -1;
  bpf_spin_lock(&g->lock);
  g->count += *by;
  bpf_spin_unlock(&g->lock);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
