// Tail calls through a prog array filled by libbpf-style `values`: a
// three-stage chain, and a program that tail-calls itself until the
// kernel's limit of 33 stops it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct args {
  __u64 trail;
  __u32 depth;
  __u32 pad;
};

int stage1(struct args *a);
int stage2(struct args *a);
int again(struct args *a);

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __array(values, int(void *));
} jump SEC(".maps") = {
    .values = {[0] = (void *)&stage1, [1] = (void *)&stage2, [3] = (void *)&again},
};

SEC("syscall")
int entry(struct args *a) {
  a->trail = a->trail * 10 + 1;
  bpf_tail_call(a, &jump, 0);
  return -1;  // not reached
}

SEC("syscall")
int stage1(struct args *a) {
  a->trail = a->trail * 10 + 2;
  bpf_tail_call(a, &jump, 1);
  return -1;
}

SEC("syscall")
int stage2(struct args *a) {
  a->trail = a->trail * 10 + 3;
  bpf_tail_call(a, &jump, 2);  // empty slot: falls through
  return 7;
}

SEC("syscall")
int again(struct args *a) {
  a->depth++;
  bpf_tail_call(a, &jump, 3);
  return a->depth;  // reached once the 33 tail calls are spent
}

char LICENSE[] SEC("license") = "GPL";
