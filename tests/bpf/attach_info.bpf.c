// What the attach point tells a probe: bpf_get_attach_cookie and
// bpf_get_func_ip, recorded in global data.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 cookie, func_ip;

SEC("uprobe")
int probe(void *ctx) {
  cookie = bpf_get_attach_cookie(ctx);
  func_ip = bpf_get_func_ip(ctx);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
