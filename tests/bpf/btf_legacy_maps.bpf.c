// Legacy map definitions in the `maps` section (struct bpf_map_def, which
// libbpf 1.x no longer declares), one of them with extra zeroed bytes.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def {
  unsigned int type, key_size, value_size, max_entries, map_flags;
};

struct bpf_map_def_ext {
  unsigned int type, key_size, value_size, max_entries, map_flags, inner_map_idx, numa_node;
};

struct bpf_map_def SEC("maps") old_hash = {
    .type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 8, .max_entries = 32, .map_flags = 0};
struct bpf_map_def_ext SEC("maps") old_array = {
    .type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 16, .max_entries = 2, .map_flags = BPF_F_MMAPABLE};

SEC("socket")
int legacy(struct __sk_buff *skb) {
  __u32 k = 0;
  __u64 *v = bpf_map_lookup_elem(&old_hash, &k);
  return v ? (int)*v : (int)(long)&old_array;
}

char LICENSE[] SEC("license") = "GPL";
