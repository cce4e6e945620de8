// The one opcode table, expanded from EMBER_OPCODES, and the index used to
// find an entry from an encoded slot.
#include <array>
#include <cassert>

#include "ember/isa.hpp"

namespace ember {
namespace {

constexpr OpInfo kTable[] = {
#define EMBER_X(name, opcode, match, disc, mnemonic, form, width, llvm) \
  {Op::name, opcode, match, disc, mnemonic, form, width, llvm, #name},
    EMBER_OPCODES(EMBER_X)
#undef EMBER_X
};
static_assert(std::size(kTable) == kNumOps);

constexpr bool table_is_in_enum_order() {
  for (size_t i = 0; i < std::size(kTable); ++i)
    if (static_cast<size_t>(kTable[i].op) != i) return false;
  return true;
}
static_assert(table_is_in_enum_order());

// For each opcode byte, the first table entry with it and how many follow.
// Entries sharing an opcode are adjacent in the table except where noted in
// build_index, which therefore scans the whole table.
struct OpcodeIndex {
  std::array<std::array<uint8_t, 12>, 256> entries{};  // atomics have 10 per opcode
  std::array<uint8_t, 256> count{};
};

OpcodeIndex build_index() {
  OpcodeIndex index;
  for (const OpInfo& info : kTable) {
    auto& n = index.count[info.opcode];
    assert(n < index.entries[info.opcode].size());
    index.entries[info.opcode][n++] = static_cast<uint8_t>(info.op);
  }
  return index;
}

bool discriminator_matches(const OpInfo& info, const RawInsn& raw) {
  switch (info.match) {
    case Match::None:
      return true;
    case Match::Off:
      return raw.off == info.disc;
    case Match::Imm:
      return raw.imm == info.disc;
    case Match::Src:
      return raw.src() == info.disc;
  }
  return false;
}

}  // namespace

std::span<const OpInfo> op_table() { return kTable; }

const OpInfo& op_info(Op op) {
  assert(static_cast<size_t>(op) < kNumOps);
  return kTable[static_cast<size_t>(op)];
}

const OpInfo* lookup_opcode(const RawInsn& raw) {
  static const OpcodeIndex index = build_index();
  for (uint8_t i = 0; i < index.count[raw.opcode]; ++i) {
    const OpInfo& info = kTable[index.entries[raw.opcode][i]];
    if (discriminator_matches(info, raw)) return &info;
  }
  return nullptr;
}

}  // namespace ember
