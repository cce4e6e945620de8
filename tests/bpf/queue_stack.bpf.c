// Queue and stack maps: push past capacity (with and without BPF_EXIST),
// pop, peek, and pop from empty.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_QUEUE);
  __uint(max_entries, 4);
  __type(value, __u32);
} fifo SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_STACK);
  __uint(max_entries, 4);
  __type(value, __u32);
} lifo SEC(".maps");

struct args {
  __s32 push_rc[6];
  __u32 popped[6];
  __s32 pop_rc[6];
};

SEC("syscall")
int queue_and_stack(struct args *ctx) {
  // Helpers may not take pointers into a syscall context: work on a copy.
  struct args a;
  __builtin_memcpy(&a, ctx, sizeof(a));
  for (__u32 i = 0; i < 5; i++) {
    __u32 v = 10 + i;
    a.push_rc[i] = bpf_map_push_elem(&fifo, &v, 0);  // the fifth: -E2BIG
    bpf_map_push_elem(&lifo, &v, 0);
  }
  __u32 v = 99;
  a.push_rc[5] = bpf_map_push_elem(&lifo, &v, BPF_EXIST);  // drops the oldest
  bpf_map_peek_elem(&fifo, &a.popped[0]);
  a.pop_rc[0] = bpf_map_pop_elem(&fifo, &a.popped[1]);
  a.pop_rc[1] = bpf_map_pop_elem(&lifo, &a.popped[2]);
  a.pop_rc[2] = bpf_map_pop_elem(&lifo, &a.popped[3]);
  for (int i = 0; i < 4; i++) bpf_map_pop_elem(&fifo, &v);
  a.pop_rc[3] = bpf_map_pop_elem(&fifo, &a.popped[4]);  // empty: -ENOENT
  __builtin_memcpy(ctx, &a, sizeof(a));
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
