// Tail calls through a prog array filled by libbpf-style `values`: a
// three-stage chain, and a program that tail-calls itself until the
// kernel's limit of 33 stops it. Raw tracepoint programs: the kernel keeps
// prog arrays from sleepable programs.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 trail;
__u32 depth;

int stage1(void *ctx);
int stage2(void *ctx);
int again(void *ctx);

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __array(values, int(void *));
} jump SEC(".maps") = {
    .values = {[0] = (void *)&stage1, [1] = (void *)&stage2, [3] = (void *)&again},
};

SEC("raw_tp")
int entry(void *ctx) {
  trail = trail * 10 + 1;
  bpf_tail_call(ctx, &jump, 0);
  return -1;  // not reached
}

SEC("raw_tp")
int stage1(void *ctx) {
  trail = trail * 10 + 2;
  bpf_tail_call(ctx, &jump, 1);
  return -1;
}

SEC("raw_tp")
int stage2(void *ctx) {
  trail = trail * 10 + 3;
  bpf_tail_call(ctx, &jump, 2);  // empty slot: falls through
  return 7;
}

SEC("raw_tp")
int again(void *ctx) {
  depth++;
  bpf_tail_call(ctx, &jump, 3);
  return depth;  // reached once the 33 tail calls are spent
}

char LICENSE[] SEC("license") = "GPL";
