// A program in a section libbpf does not know: loaders must report it by
// name rather than guess a program type.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("frobnicate")
int mystery(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
