// What the kernel allows each program type: its context (which bytes are
// readable or writable, at which sizes, and what a load yields), its return
// values, and the helpers it may call. One table, from the kernel's
// *_is_valid_access, check_return_code and *_func_proto functions.
#pragma once

#include <cstdint>
#include <string>

#include "ember/prog_types.hpp"

namespace ember::verifier {

// What a context load gives the program.
enum class CtxValue : uint8_t {
  Scalar,      // a number
  PacketData,  // xdp_md->data, __sk_buff->data: PTR_TO_PACKET
  PacketEnd,   // ->data_end: PTR_TO_PACKET_END
  PacketMeta,  // ->data_meta: PTR_TO_PACKET_META
};

struct CtxAccess {
  bool ok = false;
  CtxValue value = CtxValue::Scalar;
  // When !ok: why, in words ("xdp_md has no field at offset 24",
  // "__sk_buff->len is read-only", "data must be read with a 4-byte load").
  std::string why;
};

struct ProgTypeRules {
  ProgType type;
  const char* ctx_name;  // "struct xdp_md", "struct pt_regs", "" for syscall
  uint32_t ctx_size;     // bytes the program may address (syscall: 65535)
  bool packet;           // has direct packet access
  bool packet_write;     // may write the packet directly
  // Allowed return values [ret_min, ret_max] (check_return_code); when
  // !ret_checked any scalar is allowed.
  bool ret_checked;
  int64_t ret_min, ret_max;
  // Whether the program may leak pointers to user space (kernel: only with
  // CAP_PERFMON, i.e. bpf_allow_ptr_leaks; Ember: false for all types).
  bool may_leak_pointers;
};

// The rules for `type`; types Ember does not know get conservative ones
// (no context access, any return value).
const ProgTypeRules& rules_for(ProgType type);

// Is a `size`-byte access (1, 2, 4, 8) at context offset `off` allowed, and
// what does a load there give? `off` is the constant offset (the kernel
// forbids variable context offsets).
CtxAccess check_ctx_access(ProgType type, int64_t off, int size, bool write);

// May a program of `type` call helper `helper_id` (its *_func_proto)?
// GPL-only helpers need a GPL-compatible license. `why` says why not.
bool helper_allowed(ProgType type, int32_t helper_id, bool gpl, std::string* why);

}  // namespace ember::verifier
