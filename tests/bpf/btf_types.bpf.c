// Types for the BTF parser's tests: every kind clang 14 emits (int, pointer,
// array, struct with bitfields, union, enum, forward declaration, typedef,
// const, volatile, restrict, function, function prototype, variable,
// data section, float, decl and type tags), reached from one program.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct opaque;  // FWD

typedef unsigned long long u64_t;
typedef int (*callback_t)(int, long);

enum color { RED = 1, GREEN = 2, BLUE = -3 };

union both {
  int i;
  float f;
};

struct sample {
  char comm[16];
  unsigned int flags : 3;
  unsigned int mode : 5;
  const volatile u64_t counter;
  struct opaque *hidden;
  int matrix[2][3];
  enum color color;
  union both u;
  callback_t cb;
  double ratio;
  int *__attribute__((btf_type_tag("user"))) user_ptr;
  const char *restrict name;
} __attribute__((btf_decl_tag("sample_tag")));

struct sample sample_var;

SEC("socket")
int btf_types(struct __sk_buff *skb) {
  sample_var.flags = skb->len & 7;
  return sample_var.matrix[1][2] + sample_var.color;
}

char LICENSE[] SEC("license") = "GPL";
