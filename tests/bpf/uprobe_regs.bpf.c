// Probe programs in libbpf's style, run by the probe runner on hand-made
// registers (tests/probe_runner_test.cpp): what PT_REGS_PARM1..6,
// PT_REGS_RC, PT_REGS_SP/IP, bpf_get_attach_cookie and bpf_get_func_ip see, recorded in
// global data.
#define __TARGET_ARCH_x86
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#ifndef BPF_UPROBE  // libbpf < 1.2 has only the kprobe names, which are the same macros
#define BPF_UPROBE BPF_KPROBE
#define BPF_URETPROBE BPF_KRETPROBE
#endif

__u64 args[6], ret, cookie, func_ip, sp, ip, entries, returns;

SEC("uprobe")
int BPF_UPROBE(on_entry, long a1, long a2, long a3, long a4, long a5) {
  args[0] = a1;
  args[1] = a2;
  args[2] = a3;
  args[3] = a4;
  args[4] = a5;
  args[5] = ctx->r9;  // PT_REGS_PARM6 comes with libbpf 1.2; Debian 12 has 1.1
  cookie = bpf_get_attach_cookie(ctx);
  func_ip = bpf_get_func_ip(ctx);
  sp = PT_REGS_SP(ctx);
  ip = PT_REGS_IP(ctx);
  __sync_fetch_and_add(&entries, 1);
  return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(on_return, long rc) {
  ret = rc;
  __sync_fetch_and_add(&returns, 1);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
