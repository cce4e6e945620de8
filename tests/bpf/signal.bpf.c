// bpf_send_signal and bpf_send_signal_thread to the process the program
// runs in; an invalid signal is -EINVAL.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct args {
  __u32 sig;
  __u32 pad;
  __s64 rc[3];
};

SEC("syscall")
int signal_self(struct args *a) {
  a->rc[0] = bpf_send_signal(a->sig);
  a->rc[1] = bpf_send_signal_thread(a->sig);
  a->rc[2] = bpf_send_signal(0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
