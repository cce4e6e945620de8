// Reads past the end of its context: the checked mode must stop it and
// name the C line.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("syscall")
int past_the_end(__u64 *ctx) {
  __u64 first = ctx[0];
  return first + ctx[64];
}

char LICENSE[] SEC("license") = "GPL";
