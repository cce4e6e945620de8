// Static and global functions, nested calls, and a function pointer passed
// as a callback.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct args {
  __u64 in;
  __u64 out[3];
};

static __noinline __u64 square(__u64 x) { return x * x; }

static __noinline __u64 sum_of_squares(__u64 a, __u64 b) { return square(a) + square(b); }

__noinline int global_scale(__u64 *v, int by) {
  if (!v) return -1;
  *v *= by;
  return 0;
}

static int count_calls(__u32 i, __u64 *n) {
  *n += square(i);
  return 0;
}

SEC("syscall")
int calls(struct args *a) {
  a->out[0] = sum_of_squares(a->in, a->in + 1);
  __u64 v = a->in;  // a global function may not take a pointer into the context
  global_scale(&v, 3);
  a->out[1] = v;
  __u64 n = 0;
  bpf_loop(5, count_calls, &n, 0);
  a->out[2] = n;
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
