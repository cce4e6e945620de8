// bpf_perf_event_output to this CPU's slot of a perf event array.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} samples SEC(".maps");

SEC("uprobe")
int sample(__u64 *ctx) {
  __u64 data[2] = {0xfeed, 42};
  return bpf_perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU, data, sizeof(data));
}

char LICENSE[] SEC("license") = "GPL";
