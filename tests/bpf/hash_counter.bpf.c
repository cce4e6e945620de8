// A hash map counting keys from the context: lookup then atomic add, or
// insert with BPF_NOEXIST (E2BIG once the map is full), then a delete.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 6);
  __type(key, __u32);
  __type(value, __u64);
} counts SEC(".maps");

struct args {
  __u32 keys[8];
  __s32 results[8];
};

SEC("syscall")
int count_keys(struct args *ctx) {
  // The kernel forbids variable offsets into a syscall context: copy first.
  struct args a;
  __builtin_memcpy(&a, ctx, sizeof(a));
  for (int i = 0; i < 8; i++) {
    __u32 k = a.keys[i];
    __u64 one = 1;
    __u64 *v = bpf_map_lookup_elem(&counts, &k);
    if (v) {
      __sync_fetch_and_add(v, 1);
      a.results[i] = 0;
    } else {
      a.results[i] = bpf_map_update_elem(&counts, &k, &one, BPF_NOEXIST);
    }
  }
  __builtin_memcpy(ctx, &a, sizeof(a));
  __u32 gone = 3;
  return bpf_map_delete_elem(&counts, &gone);
}

char LICENSE[] SEC("license") = "GPL";
