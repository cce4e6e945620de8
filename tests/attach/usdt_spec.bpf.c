// A libbpf USDT program, unmodified (BPF_USDT from <bpf/usdt.bpf.h>): its
// BTF gives the layout of struct __bpf_usdt_spec that tests/usdt_test.cpp
// checks Ember's mirror (attach/usdt.hpp) against.
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

long ember_usdt_sum;

SEC("usdt/./usdt_target:ember:three")
int BPF_USDT(ember_three, long big, unsigned int word, void* ptr) {
  ember_usdt_sum += big + word + (long)ptr + bpf_usdt_cookie(ctx);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
