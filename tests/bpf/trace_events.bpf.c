// Typed events for tests/trace_test.cpp's `ember trace` runs on
// tests/attach/trace_workload.c: the first three calls of
// ember_workload_target(a, 2, 3, 4, 5, 6) send a struct event (signed and
// unsigned integers, the comm, a nested struct, an array, a bool, an enum,
// bitfields and a pointer) to a ring buffer and to a perf event array, and
// 8 bytes to a second ring buffer (records shorter than struct event).
#define __TARGET_ARCH_x86
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#ifndef BPF_UPROBE  // libbpf < 1.2 has only the kprobe names, which are the same macros
#define BPF_UPROBE BPF_KPROBE
#endif

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 16);
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 16);
} short_events SEC(".maps");

enum event_kind { KIND_FIRST = 1, KIND_OTHER = 2 };

struct args {
  __u32 b, c;
};

struct event {
  __s32 neg_a;
  __u64 sum;
  char comm[16];
  struct args args;
  __u16 rest[3];
  _Bool first;
  enum event_kind kind;
  __u8 low : 3, high : 5;
  void* where;
};

// libbpf-tools' way of keeping the record type in the BTF: a global of it.
struct event* unused_event __attribute__((unused));

SEC("uprobe")
int BPF_UPROBE(on_call, long a, long b, long c, long d, long e) {
  if (a > 3) return 0;  // the main thread's first three calls
  struct event ev = {};
  ev.neg_a = -a;
  ev.sum = b + c + d + e + ctx->r9;
  bpf_get_current_comm(ev.comm, sizeof ev.comm);
  ev.args.b = b;
  ev.args.c = c;
  ev.rest[0] = d;
  ev.rest[1] = e;
  ev.rest[2] = ctx->r9;
  ev.first = a == 1;
  ev.kind = a == 1 ? KIND_FIRST : KIND_OTHER;
  ev.low = a;
  ev.high = a + 16;
  ev.where = (void*)0x1234;
  bpf_ringbuf_output(&events, &ev, sizeof ev, 0);
  bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &ev, sizeof ev);
  __u64 half = a;
  bpf_ringbuf_output(&short_events, &half, sizeof half, 0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
