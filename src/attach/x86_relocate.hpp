// Moving x86-64 instructions: the ones an inline hook overwrites are copied
// into a trampoline at another address, rewritten where their meaning
// depends on where they sit (RIP-relative operands, relative branches).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ember/result.hpp"

namespace ember::attach {

struct Relocation {
  std::vector<uint8_t> code;  // runs at `dest`; does not jump back by itself
  size_t window = 0;          // bytes of the source it replaces (whole instructions)
  size_t instructions = 0;    // how many instructions the window holds
};

// Relocates whole instructions from `src` (readable for `readable` bytes)
// until at least `min_bytes` are covered, into code meant to run at `dest`.
// Errors (the caller falls back to int3): undecodable bytes, int3/hlt/ud2 or a
// ret/jmp before the window is full (function too short), jrcxz/loop/xbegin,
// a branch inside the window that lands inside it, a RIP-relative operand
// that `dest` cannot reach with a 32-bit displacement.
Result<Relocation> relocate(uintptr_t src, size_t readable, size_t min_bytes, uintptr_t dest);

// Decodes up to `scan` bytes after the window linearly and fails if a
// relative branch there targets the inside of [src+1, src+window): patching
// would make that branch land in the middle of the jmp.
Status check_no_branch_into(uintptr_t src, size_t readable, size_t window, size_t scan = 512);

// Appends `jmp [rip+0]; .quad target` (14 bytes, any distance).
void emit_abs_jmp(std::vector<uint8_t>& out, uint64_t target);

}  // namespace ember::attach
