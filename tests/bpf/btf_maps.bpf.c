// BTF-defined maps of every common shape, for parse_map_definitions: sizes
// from types and from sizes, flags, a ring buffer, a prog array and an
// array of maps with initial `values`, and a pinned map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct key {
  __u32 a;
  __u16 b;
};

struct lpm_key {
  __u32 prefixlen;
  __u8 data[4];
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 128);
  __type(key, struct key);
  __type(value, __u64);
} counts SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __uint(key_size, 4);
  __uint(value_size, 24);
} sized SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u64);
  __uint(numa_node, 1);
} percpu SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 1000);
  __type(key, __u64);
  __type(value, __u32);
  __uint(map_flags, BPF_F_NO_COMMON_LRU);
} lru SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 64);
  __type(key, struct lpm_key);
  __type(value, __u32);
  __uint(map_flags, BPF_F_NO_PREALLOC);
} lpm SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4096);
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
  __uint(max_entries, 100);
  __type(value, __u32);
  __uint(map_extra, 3);
} bloom SEC(".maps");

int prog_a(struct __sk_buff *skb);
int prog_b(struct __sk_buff *skb);

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 4);
  __uint(key_size, 4);
  __array(values, int(struct __sk_buff *));
} jumps SEC(".maps") = {
    .values = {[0] = (void *)&prog_a, [2] = (void *)&prog_b},
};

struct inner_map {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} inner1 SEC(".maps"), inner2 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, 3);
  __type(key, __u32);
  __array(values, struct inner_map);
} outer SEC(".maps") = {
    .values = {[1] = &inner2, [2] = &inner1},
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8);
  __type(key, __u32);
  __type(value, __u32);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned SEC(".maps");

SEC("socket")
int prog_a(struct __sk_buff *skb) {
  bpf_tail_call(skb, &jumps, 2);
  return 0;
}

SEC("socket")
int prog_b(struct __sk_buff *skb) {
  struct key k = {};
  __u64 *v = bpf_map_lookup_elem(&counts, &k);
  return v ? (int)*v : 1;
}

char LICENSE[] SEC("license") = "GPL";
