// An array filled by the program, summed with bpf_for_each_map_elem, with a
// callback that stops early.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 8);
  __type(key, __u32);
  __type(value, __u64);
} squares SEC(".maps");

struct sum_ctx {
  __u64 sum;
  __u64 stop_at;
};

static long add_value(void *map, __u32 *key, __u64 *val, struct sum_ctx *c) {
  c->sum += *val;
  return *key + 1 >= c->stop_at;  // 1 stops the iteration
}

struct args {
  __u64 stop_at;
  __u64 sum;
  __s64 visited;
};

SEC("syscall")
int sum_squares(struct args *a) {
  for (__u32 i = 0; i < 8; i++) {
    __u64 sq = (__u64)i * i;
    bpf_map_update_elem(&squares, &i, &sq, BPF_ANY);
  }
  struct sum_ctx c = {.sum = 0, .stop_at = a->stop_at};
  a->visited = bpf_for_each_map_elem(&squares, add_value, &c, 0);
  a->sum = c.sum;
  __u32 out_of_range = 8;
  __u64 x = 1;
  return bpf_map_update_elem(&squares, &out_of_range, &x, BPF_ANY);  // -E2BIG
}

char LICENSE[] SEC("license") = "GPL";
