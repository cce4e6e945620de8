// Loops three ways: bpf_loop with a callback that breaks, a bounded for
// loop, and a while loop over a string in the context.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct args {
  char text[32];
  __u64 loop_sum;
  __s64 loop_ret;
  __u64 triangle;
  __u64 length;
};

struct acc {
  __u64 sum;
  __u64 limit;
};

static int step(__u32 i, struct acc *a) {
  if (a->sum + i > a->limit) return 1;
  a->sum += i;
  return 0;
}

SEC("syscall")
int loops(struct args *a) {
  struct acc acc = {.sum = 0, .limit = 100};
  a->loop_ret = bpf_loop(1000, step, &acc, 0);
  a->loop_sum = acc.sum;
  __u64 t = 0;
  for (int i = 1; i <= 20; i++) t += i;
  a->triangle = t;
  // The kernel forbids variable offsets into a syscall context: copy first.
  char text[32];
  __builtin_memcpy(text, a->text, sizeof(text));
  __u64 n = 0;
  while (n < sizeof(text) && text[n]) n++;
  a->length = n;
  return bpf_loop(1 << 24, step, &acc, 0);  // over BPF_MAX_LOOPS: -E2BIG
}

char LICENSE[] SEC("license") = "GPL";
