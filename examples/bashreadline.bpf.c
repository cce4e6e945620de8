// Every line typed into an interactive bash, as BCC's bashreadline prints
// it: a return probe on bash's readline() (which returns the line it read)
// sends the shell's pid and the line as a ring buffer event.
//
//   ember trace examples/bashreadline.bpf.o -- bash -i
//
// `ember trace` prints each event as its bytes in hex: `events: ` then the
// pid (4 bytes, little-endian) and the line up to and including its NUL.
#define __TARGET_ARCH_x86
// The order matters (the kernel's types, then libbpf's headers):
// clang-format off
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
// clang-format on

#ifndef BPF_URETPROBE  // libbpf < 1.2 has only the kprobe names, which are the same macros
#define BPF_URETPROBE BPF_KRETPROBE
#endif

#define MAX_LINE 80  // BCC's bashreadline keeps 80 bytes too

struct line {
  __u32 pid;
  char text[MAX_LINE];
};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 16);
} events SEC(".maps");

SEC("uretprobe//bin/bash:readline")
int BPF_URETPROBE(bash_readline, const char* ret) {
  if (!ret) return 0;  // end of input
  // Other programs link readline too; in bash, only bash's own process
  // counts (a subshell is still "bash").
  char comm[16];
  bpf_get_current_comm(comm, sizeof comm);
  if (comm[0] != 'b' || comm[1] != 'a' || comm[2] != 's' || comm[3] != 'h' || comm[4] != 0) return 0;
  struct line e = {};
  e.pid = bpf_get_current_pid_tgid() >> 32;
  long n = bpf_probe_read_user_str(e.text, sizeof e.text, ret);
  if (n <= 0 || n > MAX_LINE) return 0;
  // Only the bytes read: the line and its NUL, not the rest of the buffer.
  bpf_ringbuf_output(&events, &e, sizeof e.pid + n, 0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
