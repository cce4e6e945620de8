// Longest-prefix match over an IPv4 routing table the program fills.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct key {
  __u32 prefixlen;
  __u32 addr;  // network order
};

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 16);
  __type(key, struct key);
  __type(value, __u32);
  __uint(map_flags, BPF_F_NO_PREALLOC);
} routes SEC(".maps");

__u32 hops[4];

static void add(__u32 addr, __u32 len, __u32 hop) {
  struct key k = {.prefixlen = len, .addr = bpf_htonl(addr)};
  bpf_map_update_elem(&routes, &k, &hop, BPF_ANY);
}

static __u32 route(__u32 addr) {
  struct key k = {.prefixlen = 32, .addr = bpf_htonl(addr)};
  __u32 *hop = bpf_map_lookup_elem(&routes, &k);
  return hop ? *hop : 0;
}

SEC("raw_tp")  // not syscall: the kernel keeps LPM tries from sleepable programs
int lookup_routes(void *ctx) {
  add(0x0A000000, 8, 1);   // 10.0.0.0/8
  add(0x0A010000, 16, 2);  // 10.1.0.0/16
  add(0x0A010200, 24, 3);  // 10.1.2.0/24
  add(0x00000000, 0, 9);   // default
  hops[0] = route(0x0A010203);  // 10.1.2.3 -> /24
  hops[1] = route(0x0A01FF01);  // 10.1.255.1 -> /16
  hops[2] = route(0x0AFF0001);  // 10.255.0.1 -> /8
  hops[3] = route(0xC0A80001);  // 192.168.0.1 -> default
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
