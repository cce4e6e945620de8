// The "kernel" side of tests/bpf/core_reads.bpf.c: the same types as a
// newer build would lay them out. Its BTF is the CO-RE target.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct point {
  short x;
  short y;
};

struct foo___v2 {
  long long b;  // moved to the front
  int a;        // moved behind b
  int pad;
  unsigned int lo : 4;
  unsigned int other : 3;  // pushes sig 3 bits up
  int sig : 6;
  short extra;             // pushes pts 2 bytes on
  struct point pts[6];     // a longer array
  // `gone` is gone
};

enum state___v2 { IDLE = 0, DEAD = 20 };  // RUNNING dropped, DEAD renumbered

struct foo___v2 target_foo;
enum state___v2 target_state;

SEC("socket")
int core_target(struct __sk_buff *skb) { return target_foo.a + target_state + skb->len; }

char LICENSE[] SEC("license") = "GPL";
