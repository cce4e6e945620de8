// Probe programs for tests/trace_test.cpp's lifecycle tests (`ember trace -p`
// detaching, unloading, attaching again) on tests/attach/lifecycle_workload.c:
// exact call counts by first argument and the number and sum of return
// values. Plain SEC("uprobe") / SEC("uretprobe") programs bound with -e;
// nothing on libc, so that only the threads the test chooses run a probe.
#define __TARGET_ARCH_x86
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#ifndef BPF_UPROBE  // libbpf < 1.2 has only the kprobe names, which are the same macros
#define BPF_UPROBE BPF_KPROBE
#define BPF_URETPROBE BPF_KRETPROBE
#endif

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u64);
  __type(value, __u64);
} calls SEC(".maps");

__u64 returns, return_sum;

SEC("uprobe")
int BPF_UPROBE(on_target, long a) {
  __u64 key = a, one = 1;
  __u64* v = bpf_map_lookup_elem(&calls, &key);
  if (v)
    __sync_fetch_and_add(v, 1);
  else
    bpf_map_update_elem(&calls, &key, &one, BPF_NOEXIST);
  return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(on_target_ret, long rc) {
  __sync_fetch_and_add(&returns, 1);
  __sync_fetch_and_add(&return_sum, rc);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
