// CO-RE relocations of every kind clang 14 emits, against local types that
// tests/bpf/core_target.bpf.c lays out differently (struct foo___v2 moves
// fields and drops one, enum state___v2 renumbers and drops a value).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct point {
  short x;
  short y;
};

struct foo {
  int a;
  long long b;
  unsigned int lo : 4;
  int sig : 6;
  struct point pts[3];
  unsigned int gone;
} __attribute__((preserve_access_index));

enum state { IDLE = 0, RUNNING = 5, DEAD = 9 };

struct local_only {
  int z;
};

SEC("socket")
int core_reads(struct __sk_buff *skb) {
  struct foo *f = (struct foo *)(long)skb->data;
  long sum = f->a;                      // ldx: byte_off 0:0
  sum += BPF_CORE_READ(f, b);           // alu: byte_off 0:1
  sum += BPF_CORE_READ(f, pts[2].y);    // alu: byte_off 0:4:2:1
  sum += BPF_CORE_READ_BITFIELD_PROBED(f, sig);  // byte_off, byte_sz, lshift, rshift, signed 0:3
  if (bpf_core_field_exists(f->gone)) sum += 1;  // field_exists 0:5
  sum += bpf_core_field_size(f->b);     // byte_sz 0:1
  if (bpf_core_type_exists(struct local_only)) sum += 2;
  sum += bpf_core_type_size(struct foo);
  if (bpf_core_enum_value_exists(enum state, RUNNING)) sum += 3;
  sum += bpf_core_enum_value(enum state, DEAD);
  sum += bpf_core_type_id_local(struct foo);
  sum += bpf_core_type_id_kernel(struct foo);
  return sum;
}

char LICENSE[] SEC("license") = "GPL";
