// The current task and the clocks: pid/tgid, uid/gid, comm, CPU, NUMA node,
// monotonic, boot and coarse clocks, jiffies and random numbers.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct args {
  __u64 pid_tgid;
  __u64 uid_gid;
  char comm[16];
  __u32 cpu;
  __u32 node;
  __u64 t[4];  // ktime, boot, coarse, ktime again
  __u64 jiffies;
  __u32 rand[2];
};

SEC("syscall")
int task_info(struct args *a) {
  a->pid_tgid = bpf_get_current_pid_tgid();
  a->uid_gid = bpf_get_current_uid_gid();
  bpf_get_current_comm(a->comm, sizeof(a->comm));
  a->cpu = bpf_get_smp_processor_id();
  a->node = bpf_get_numa_node_id();
  a->t[0] = bpf_ktime_get_ns();
  a->t[1] = bpf_ktime_get_boot_ns();
  a->t[2] = bpf_ktime_get_coarse_ns();
  a->t[3] = bpf_ktime_get_ns();
  a->jiffies = bpf_jiffies64();
  a->rand[0] = bpf_get_prandom_u32();
  a->rand[1] = bpf_get_prandom_u32();
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
