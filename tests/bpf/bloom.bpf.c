// A bloom filter: values pushed by the program are found; others mostly not.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
  __uint(max_entries, 64);
  __type(value, __u64);
  __uint(map_extra, 3);  // hash functions
} seen SEC(".maps");

struct args {
  __u64 push[4];
  __u64 probe[4];
  __s32 found[4];
};

SEC("syscall")
int bloom(struct args *ctx) {
  // Helpers may not take pointers into a syscall context: work on a copy.
  struct args a;
  __builtin_memcpy(&a, ctx, sizeof(a));
  for (int i = 0; i < 4; i++) bpf_map_push_elem(&seen, &a.push[i], BPF_ANY);
  for (int i = 0; i < 4; i++) a.found[i] = bpf_map_peek_elem(&seen, &a.probe[i]);
  __builtin_memcpy(ctx, &a, sizeof(a));
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
