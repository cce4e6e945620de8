// Global data in every kind of section, a kconfig extern and a bpf_loop
// callback: what a skeleton-style user sets before load and reads after.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 scale = 1;  // .rodata: set by the host before load
__u64 total;                     // .bss
__u64 calls = 5;                 // .data
char tag[8] SEC(".data.tags") = "ember";
extern __u32 LINUX_KERNEL_VERSION __kconfig;
extern __u32 CONFIG_EMBER_SURELY_ABSENT __kconfig __weak;

static int add_index(__u32 i, void *ctx) {
  __u64 *acc = ctx;
  *acc += i;
  return 0;
}

SEC("socket")
int use_globals(void *ctx) {
  __u64 acc = 0;
  bpf_loop(10, add_index, &acc, 0);  // 0 + 1 + ... + 9 = 45
  total += acc * scale;
  calls++;
  tag[0] = 'E';
  return LINUX_KERNEL_VERSION != 0 && CONFIG_EMBER_SURELY_ABSENT == 0;
}

char LICENSE[] SEC("license") = "GPL";
