// A CO-RE read of task_struct::pid with a local definition that has only
// the field it needs, to be relocated against /sys/kernel/btf/vmlinux.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
  int pid;
  int tgid;
} __attribute__((preserve_access_index));

SEC("kprobe/do_nanosleep")
int core_task(void *ctx) {
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  return BPF_CORE_READ(task, pid) + BPF_CORE_READ(task, tgid);
}

char LICENSE[] SEC("license") = "GPL";
