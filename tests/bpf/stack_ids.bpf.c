// Stack ids and raw stacks of the calling (user-space) thread.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_STACK_TRACE);
  __uint(max_entries, 64);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, 32 * sizeof(__u64));
} stacks SEC(".maps");

__s64 ids[3];
__s64 stack_bytes;
__u64 frames[8];

SEC("uprobe")
int where(void *ctx) {
  ids[0] = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
  ids[1] = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);  // same path: same id
  ids[2] = bpf_get_stackid(ctx, &stacks, 0);                // kernel stack: none in user space
  stack_bytes = bpf_get_stack(ctx, frames, sizeof(frames), BPF_F_USER_STACK);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
