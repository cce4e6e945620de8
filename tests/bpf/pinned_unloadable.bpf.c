// Pins a map, then fails to load (an extern nothing can answer): the pin
// must not stay behind.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u32);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} orphan_candidate SEC(".maps");

extern __u32 EMBER_NO_SUCH_KCONFIG __kconfig;

SEC("syscall")
int never_loads(void *ctx) {
  __u32 k = 0, v = EMBER_NO_SUCH_KCONFIG;
  return bpf_map_update_elem(&orphan_candidate, &k, &v, BPF_ANY);
}

char LICENSE[] SEC("license") = "GPL";
