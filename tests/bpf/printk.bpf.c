// bpf_printk (trace_printk, and trace_vprintk beyond three arguments).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("syscall")
int say(__u64 *n) {
  bpf_printk("hello %d", (int)*n);
  bpf_printk("five: %d %u %x %lld %s", 1, 2u, 0xab, -4ll, "str");
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
