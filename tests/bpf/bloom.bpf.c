// A bloom filter: values pushed by the program are found; others mostly
// not. A raw tracepoint program: the kernel lets sleepable (syscall)
// programs use only arrays, hashes and ring buffers.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
  __uint(max_entries, 64);
  __type(value, __u64);
  __uint(map_extra, 3);  // hash functions
} seen SEC(".maps");

const volatile __u64 push[4] = {1, 2, 3, 4};
const volatile __u64 probe[4] = {4, 1, 3, 2};
__s32 found[4];

SEC("raw_tp")
int bloom(void *ctx) {
  for (int i = 0; i < 4; i++) {
    __u64 v = push[i];
    bpf_map_push_elem(&seen, &v, BPF_ANY);
  }
  for (int i = 0; i < 4; i++) {
    __u64 v = probe[i];
    found[i] = bpf_map_peek_elem(&seen, &v);
  }
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
