// malloc/free in user space: a log2 histogram of the sizes asked of malloc,
// and the allocations still outstanding (not freed yet), counted and
// histogrammed by size. The same program the kernel would take as uprobes.
//
//   ember trace malloc_hist.bpf.o --hist sizes --hist live -- ./alloc_workload
//
// Which calls count: libc and the dynamic loader call malloc too (stdio
// buffers, thread start-up, and the agent's own thread), in numbers that
// change with the glibc version. To give exact, checkable numbers, only
// calls made by a thread named "alloc_worker" count (bpf_get_current_comm,
// the thread's name as the kernel keeps it: alloc_workload's worker names
// itself so). Build with -DCOUNT_EVERY_THREAD to count the whole process.
#define __TARGET_ARCH_x86
// The order matters (the kernel's types, then libbpf's headers):
// clang-format off
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
// clang-format on

#ifndef BPF_UPROBE  // libbpf < 1.2 has only the kprobe names, which are the same macros
#define BPF_UPROBE BPF_KPROBE
#define BPF_URETPROBE BPF_KRETPROBE
#endif

#define MAX_SLOTS 64

// Every size malloc was asked for, by log2 slot (BCC's layout: slot i holds
// [2^i, 2^(i+1)-1], 0 and 1 in slot 0).
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, MAX_SLOTS);
  __type(key, __u32);
  __type(value, __u64);
} sizes SEC(".maps");

// The outstanding allocations by log2 slot of their size.
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, MAX_SLOTS);
  __type(key, __u32);
  __type(value, __u64);
} live SEC(".maps");

// The size a thread asked for, from malloc's entry to its return: keyed by
// the thread (pid_tgid), since threads allocate at once and a return probe
// only sees the pointer.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u64);
  __type(value, __u64);
} pending SEC(".maps");

// Outstanding allocations: pointer -> size.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64);
  __type(value, __u64);
} outstanding SEC(".maps");

__u64 mallocs, outstanding_count, outstanding_bytes;

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

static __always_inline __u32 log2_slot(__u64 v) {
  __u32 hi = v >> 32;
  return hi ? log2_u32(hi) + 32 : log2_u32(v);
}

static __always_inline void add(void* map, __u64 size, __s64 delta) {
  __u32 slot = log2_slot(size);
  __u64* v = bpf_map_lookup_elem(map, &slot);
  if (v) __sync_fetch_and_add(v, delta);
}

static __always_inline int counted_thread(void) {
#ifdef COUNT_EVERY_THREAD
  return 1;
#else
  char comm[16];
  if (bpf_get_current_comm(comm, sizeof comm)) return 0;
  const char want[] = "alloc_worker";
  for (int i = 0; i < sizeof want; ++i)
    if (comm[i] != want[i]) return 0;
  return 1;
#endif
}

SEC("uprobe/libc.so.6:malloc")
int BPF_UPROBE(malloc_enter, __u64 size) {
  if (!counted_thread()) return 0;
  __u64 tid = bpf_get_current_pid_tgid();
  add(&sizes, size, 1);
  __sync_fetch_and_add(&mallocs, 1);
  bpf_map_update_elem(&pending, &tid, &size, BPF_ANY);
  return 0;
}

SEC("uretprobe/libc.so.6:malloc")
int BPF_URETPROBE(malloc_return, void* ptr) {
  __u64 tid = bpf_get_current_pid_tgid();
  __u64* size = bpf_map_lookup_elem(&pending, &tid);
  if (!size) return 0;  // a thread we do not count
  __u64 sz = *size, key = (__u64)ptr;
  bpf_map_delete_elem(&pending, &tid);
  if (!ptr) return 0;  // malloc failed: nothing outstanding
  if (bpf_map_update_elem(&outstanding, &key, &sz, BPF_NOEXIST)) return 0;
  add(&live, sz, 1);
  __sync_fetch_and_add(&outstanding_count, 1);
  __sync_fetch_and_add(&outstanding_bytes, sz);
  return 0;
}

// Any thread may free what a counted thread allocated.
SEC("uprobe/libc.so.6:free")
int BPF_UPROBE(free_enter, void* ptr) {
  __u64 key = (__u64)ptr;
  __u64* size = bpf_map_lookup_elem(&outstanding, &key);
  if (!size) return 0;
  __u64 sz = *size;
  if (bpf_map_delete_elem(&outstanding, &key)) return 0;  // another free won the race
  add(&live, sz, -1);
  __sync_fetch_and_sub(&outstanding_count, 1);
  __sync_fetch_and_sub(&outstanding_bytes, sz);
  return 0;
}

// The totals when the program ends (exit runs once, before the atexit
// handlers: what is outstanding then is what the program never freed).
SEC("uprobe/libc.so.6:exit")
int BPF_UPROBE(exit_enter) {
  bpf_printk("%llu mallocs, %llu outstanding (%llu bytes)", mallocs, outstanding_count, outstanding_bytes);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
