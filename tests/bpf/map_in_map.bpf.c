// Maps of maps: an array of maps and a hash of maps, with inner maps from
// `values`, looked up and updated through the outer map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
};

struct inner inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, 2);
  __type(key, __u32);
  __array(values, struct inner);
} outer_array SEC(".maps") = {.values = {&inner_a, &inner_b}};

struct {
  __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
  __uint(max_entries, 4);
  __type(key, __u32);
  __array(values, struct inner);
} outer_hash SEC(".maps") = {.values = {[2] = &inner_b}};

struct args {
  __u64 got[3];
};

SEC("syscall")
int through_outer(struct args *a) {
  __u32 k0 = 0, k1 = 1, k2 = 2, k9 = 9;
  void *m = bpf_map_lookup_elem(&outer_array, &k1);  // inner_b
  if (!m) return -1;
  __u64 v = 42;
  bpf_map_update_elem(m, &k0, &v, BPF_ANY);
  m = bpf_map_lookup_elem(&outer_hash, &k2);  // inner_b again
  if (!m) return -2;
  __u64 *p = bpf_map_lookup_elem(m, &k0);
  a->got[0] = p ? *p : 0;
  m = bpf_map_lookup_elem(&outer_array, &k0);  // inner_a
  if (!m) return -3;
  p = bpf_map_lookup_elem(m, &k0);
  a->got[1] = p ? *p : 1000;
  a->got[2] = bpf_map_lookup_elem(&outer_hash, &k9) == 0;
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
