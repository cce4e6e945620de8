// bpf_current_task_under_cgroup against a CGROUP_ARRAY the host fills
// with cgroup directory fds.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u32);
} cgroups SEC(".maps");

struct args {
  __s64 under[3];
};

SEC("syscall")
int under_cgroup(struct args *a) {
  a->under[0] = bpf_current_task_under_cgroup(&cgroups, 0);
  a->under[1] = bpf_current_task_under_cgroup(&cgroups, 1);
  a->under[2] = bpf_current_task_under_cgroup(&cgroups, 5);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
