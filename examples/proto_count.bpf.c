// The bundled object example: counts Ethernet frames by IP protocol in a
// hash map and keeps the total length in global data. `make run` compiles
// it with clang and runs it with `ember run` on examples/frame.hex.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct frame {
  __u8 eth[14];
  __u8 ver_ihl, tos;
  __u16 total_len;
  __u8 rest[5];
  __u8 protocol;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 256);
  __type(key, __u32);
  __type(value, __u64);
} by_protocol SEC(".maps");

__u64 frames_seen;

SEC("syscall")
int count(struct frame *f) {
  __u32 proto = f->protocol;
  __u64 one = 1, *n = bpf_map_lookup_elem(&by_protocol, &proto);
  if (n)
    __sync_fetch_and_add(n, 1);
  else
    bpf_map_update_elem(&by_protocol, &proto, &one, BPF_NOEXIST);
  frames_seen++;
  bpf_printk("frame %llu: protocol %u", frames_seen, proto);
  return proto;
}

char LICENSE[] SEC("license") = "GPL";
