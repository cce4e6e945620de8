// Reading memory by address: user memory the context points to, a string,
// an address that is not mapped, and kernel memory.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct args {
  __u64 data_ptr;    // user memory holding 16 bytes
  __u64 string_ptr;  // a NUL-terminated string
  __u64 bad_ptr;     // an unmapped address
  __u8 data[16];
  char str[12];
  __u8 bad[8];
  __s64 rc[4];
};

SEC("syscall")
int reads(struct args *ctx) {
  // Helpers may not take pointers into a syscall context: work on a copy.
  struct args a;
  __builtin_memcpy(&a, ctx, sizeof(a));
  a.rc[0] = bpf_probe_read_user(a.data, sizeof(a.data), (void *)a.data_ptr);
  a.rc[1] = bpf_probe_read_user_str(a.str, sizeof(a.str), (void *)a.string_ptr);
  a.rc[2] = bpf_probe_read_user(a.bad, sizeof(a.bad), (void *)a.bad_ptr);
  a.rc[3] = bpf_probe_read_kernel(a.bad, sizeof(a.bad), (void *)a.data_ptr);
  __builtin_memcpy(ctx, &a, sizeof(a));
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
