// bpf_snprintf, bpf_strncmp, bpf_strtol and bpf_strtoul.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct args {
  char number[16];
  char word[8];
  char out[48];
  long parsed;
  unsigned long uparsed;
  __s64 rc[5];
};

const char expected[] = "ember";

SEC("syscall")
int strings(struct args *ctx) {
  // Helpers may not take pointers into a syscall context: work on a copy.
  struct args a;
  __builtin_memcpy(&a, ctx, sizeof(a));
  a.rc[0] = bpf_strtol(a.number, sizeof(a.number), 0, &a.parsed);
  a.rc[1] = bpf_strtoul(a.number + 1, sizeof(a.number) - 1, 10, &a.uparsed);
  a.rc[2] = bpf_strncmp(a.word, sizeof(a.word), expected);
  __u64 args[3] = {a.parsed, (__u64)a.rc[2], 0xbeef};
  static const char fmt[] = "n=%ld cmp=%d hex=%x";
  a.rc[3] = bpf_snprintf(a.out, sizeof(a.out), fmt, args, sizeof(args));
  a.rc[4] = bpf_strtol(a.word, sizeof(a.word), 10, &a.parsed);  // no digits: -EINVAL
  __builtin_memcpy(ctx, &a, sizeof(a));
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
