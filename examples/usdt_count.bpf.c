// Counts of a program's USDT probes with libbpf's <bpf/usdt.bpf.h>,
// unmodified: BPF_USDT gives each probe's arguments, decoded from the
// program's .note.stapsdt the way libbpf decodes them.
//
//   ember trace examples/usdt_count.bpf.o --hist sizes
//     -e usdt:./usdt_app:usdt_app:request=on_request
//     -e usdt:./usdt_app:usdt_app:done=on_done -- ./usdt_app
//   (one line)
//
// Plain SEC("usdt") programs, bound with -e, since the program's path is
// known only when it runs (a fixed one would be SEC("usdt/PATH:usdt_app:request")).
#define __TARGET_ARCH_x86
// The order matters (the kernel's types, then libbpf's headers):
// clang-format off
#include <stdbool.h>  // usdt.bpf.h uses bool
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>
// clang-format on

// Request sizes by log2 slot (BCC's layout).
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u64);
} sizes SEC(".maps");

__u64 requests, bytes;

static __always_inline __u32 log2_slot(__u64 v) {
  __u32 r = 0;
  for (int i = 0; i < 63 && v > 1; ++i) {
    v >>= 1;
    ++r;
  }
  return r;
}

SEC("usdt")
int BPF_USDT(on_request, int id, unsigned long size) {
  __u32 slot = log2_slot(size);
  __u64* v = bpf_map_lookup_elem(&sizes, &slot);
  if (v) __sync_fetch_and_add(v, 1);
  __sync_fetch_and_add(&requests, 1);
  __sync_fetch_and_add(&bytes, size);
  return 0;
}

// Fires only while attached (the program checks its semaphore): what the
// program says it served next to what the probes counted.
SEC("usdt")
int BPF_USDT(on_done, int n, unsigned long total) {
  bpf_printk("usdt_app says %d requests, %lu bytes", n, total);
  bpf_printk("usdt_count saw %llu requests, %llu bytes", requests, bytes);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
