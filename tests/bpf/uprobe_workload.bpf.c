// Probe programs for tests/trace_test.cpp's `ember trace` runs on
// tests/attach/trace_workload.c: exact call counts by first argument, the
// sum of return values, ring buffer events, a bpf_printk line, and a log2
// histogram of malloc sizes through a libbpf section name
// (SEC("uprobe/libc.so.6:malloc")). ember_workload_target's probes are
// plain SEC("uprobe") / SEC("uretprobe") programs bound with -e.
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

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u64);
} sizes SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 16);
} events SEC(".maps");

struct event {
  __u64 a, sum_of_others;
};

__u64 returns, return_sum;

SEC("uprobe")
int BPF_UPROBE(on_target, long a, long b, long c, long d, long e) {
  __u64 key = a, one = 1;
  __u64* v = bpf_map_lookup_elem(&calls, &key);
  if (v)
    __sync_fetch_and_add(v, 1);
  else
    bpf_map_update_elem(&calls, &key, &one, BPF_NOEXIST);
  if (a <= 3) {  // the first three calls of the main thread
    struct event* ev = bpf_ringbuf_reserve(&events, sizeof *ev, 0);
    if (ev) {
      ev->a = a;
      ev->sum_of_others = b + c + d + e + ctx->r9;
      bpf_ringbuf_submit(ev, 0);
    }
  }
  if (a == 1) bpf_printk("target called with a=%ld", a);
  return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(on_target_ret, long rc) {
  __sync_fetch_and_add(&returns, 1);
  __sync_fetch_and_add(&return_sum, rc);
  return 0;
}

static __always_inline __u32 log2_u32(__u32 v) {
  __u32 r, shift;
  r = (v > 0xFFFF) << 4;
  v >>= r;
  shift = (v > 0xFF) << 3;
  v >>= shift;
  r |= shift;
  shift = (v > 0xF) << 2;
  v >>= shift;
  r |= shift;
  shift = (v > 0x3) << 1;
  v >>= shift;
  r |= shift;
  r |= (v >> 1);
  return r;
}

static __always_inline __u32 log2_u64(__u64 v) {
  __u32 hi = v >> 32;
  return hi ? log2_u32(hi) + 32 : log2_u32(v);
}

SEC("uprobe/libc.so.6:malloc")
int BPF_UPROBE(on_malloc, __u64 size) {
  __u32 slot = log2_u64(size);
  __u64* v = bpf_map_lookup_elem(&sizes, &slot);
  if (v) __sync_fetch_and_add(v, 1);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
