// Ring buffer events: reserve + submit, reserve + discard, output, and
// the query of what is waiting.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4096);
} events SEC(".maps");

struct event {
  __u32 seq;
  __u32 kind;
  __u64 value;
};

__u64 avail_after;

SEC("syscall")
int emit(__u64 *ctx) {
  __u64 base = *ctx;
  for (__u32 i = 0; i < 3; i++) {
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) return -1;
    e->seq = i;
    e->kind = 1;
    e->value = base + i;
    if (i == 1)
      bpf_ringbuf_discard(e, 0);
    else
      bpf_ringbuf_submit(e, 0);
  }
  struct event out = {.seq = 9, .kind = 2, .value = base * 2};
  long rc = bpf_ringbuf_output(&events, &out, sizeof(out), 0);
  avail_after = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
  return rc;
}

char LICENSE[] SEC("license") = "GPL";
