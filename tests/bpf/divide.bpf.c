// Divisions whose divisor the verifier can prove non-zero (and one it
// cannot): the runtime hands that proof to the JIT, which then leaves out
// its division-by-zero check.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct args {
  __u32 a, b;
  __u64 q_safe, q_any;
};

SEC("syscall")
int divide(struct args *ctx) {
  __u32 a = ctx->a, b = ctx->b;
  ctx->q_safe = a / (b | 1);  // never by 0
  ctx->q_any = a / b;         // by 0 when b is: the ISA says 0
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
