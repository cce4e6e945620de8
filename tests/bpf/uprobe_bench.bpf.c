// Probe programs whose cost per hit bench/probe_program_bench.cpp measures
// through the hook engine and the probe runner: an empty program and a
// hash-map counter keyed by the first argument.
#define __TARGET_ARCH_x86
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u64);
  __type(value, __u64);
} hits SEC(".maps");

SEC("uprobe")
int empty(struct pt_regs* ctx) { return 0; }

SEC("uprobe")
int count(struct pt_regs* ctx) {
  __u64 key = PT_REGS_PARM1(ctx) & 1023, one = 1;
  __u64* v = bpf_map_lookup_elem(&hits, &key);
  if (v)
    __sync_fetch_and_add(v, 1);
  else
    bpf_map_update_elem(&hits, &key, &one, BPF_NOEXIST);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
