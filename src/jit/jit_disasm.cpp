#include "jit/jit_disasm.hpp"

#include <Zydis/Zydis.h>

#include <algorithm>
#include <cassert>
#include <cinttypes>
#include <cstdio>

#include "ember/asm.hpp"

namespace ember {
namespace {

class Decoder {
 public:
  explicit Decoder(AsmSyntax syntax) {
    ZydisDecoderInit(&dec_, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    ZydisFormatterInit(&fmt_,
                       syntax == AsmSyntax::Att ? ZYDIS_FORMATTER_STYLE_ATT : ZYDIS_FORMATTER_STYLE_INTEL);
    att_ = syntax == AsmSyntax::Att;
    // objdump's style: lowercase hex, no zero padding ("$0x1", "jmp 0x58").
    ZydisFormatterSetProperty(&fmt_, ZYDIS_FORMATTER_PROP_HEX_UPPERCASE, ZYAN_FALSE);
    for (auto prop : {ZYDIS_FORMATTER_PROP_ADDR_PADDING_ABSOLUTE, ZYDIS_FORMATTER_PROP_ADDR_PADDING_RELATIVE,
                      ZYDIS_FORMATTER_PROP_DISP_PADDING, ZYDIS_FORMATTER_PROP_IMM_PADDING})
      ZydisFormatterSetProperty(&fmt_, prop, ZYDIS_PADDING_DISABLED);
  }

  // The instruction at `offset`; undecodable bytes come back one at a time,
  // as objdump's "(bad)" does, so that the rest of the code still decodes.
  NativeInsn at(std::span<const uint8_t> code, uint32_t offset) const {
    NativeInsn n;
    n.offset = offset;
    ZydisDecodedInstruction insn;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    auto rest = code.subspan(offset);
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec_, rest.data(), rest.size(), &insn, ops))) {
      n.valid = false;
      n.operation = "(invalid)";
      n.bytes.assign(rest.begin(), rest.begin() + 1);
      return n;
    }
    n.bytes.assign(rest.begin(), rest.begin() + insn.length);
    n.operation = operation(insn, ops, offset);
    for (uint8_t i = 0; i < insn.operand_count_visible; ++i) {
      char buf[128];
      if (ZYAN_SUCCESS(ZydisFormatterFormatOperand(&fmt_, &insn, &ops[i], buf, sizeof buf, offset, nullptr)))
        n.operands.push_back(buf);
    }
    // AT&T lists the source first: the reverse of the decoder's order.
    if (att_) std::reverse(n.operands.begin(), n.operands.end());
    return n;
  }

 private:
  // Prefixes and mnemonic: the tokens before the first operand.
  std::string operation(const ZydisDecodedInstruction& insn, const ZydisDecodedOperand* ops,
                        uint32_t offset) const {
    char buf[256];
    const ZydisFormatterToken* tok = nullptr;
    std::string s;
    if (!ZYAN_SUCCESS(ZydisFormatterTokenizeInstruction(&fmt_, &insn, ops, insn.operand_count_visible, buf,
                                                        sizeof buf, offset, &tok, nullptr)))
      return ZydisMnemonicGetString(insn.mnemonic);
    do {
      ZydisTokenType type;
      ZyanConstCharPointer value;
      if (!ZYAN_SUCCESS(ZydisFormatterTokenGetValue(tok, &type, &value))) break;
      if (type != ZYDIS_TOKEN_PREFIX && type != ZYDIS_TOKEN_MNEMONIC && type != ZYDIS_TOKEN_WHITESPACE) break;
      s += value;
    } while (ZYAN_SUCCESS(ZydisFormatterTokenNext(&tok)));
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  }

  ZydisDecoder dec_;
  ZydisFormatter fmt_;
  bool att_;
};

// Where each instruction's code starts: its line, or for one without a
// line, the start of the next instruction that has one (or the end).
std::vector<std::pair<uint32_t, uint32_t>> block_starts(std::span<const uint8_t> code,
                                                        std::span<const JitLine> lines, const Program& prog) {
  constexpr uint32_t kNone = UINT32_MAX;
  std::vector<uint32_t> start(prog.insts.size(), kNone);
  for (const JitLine& l : lines) {
    assert(l.insn < prog.insts.size() && l.offset <= code.size());
    start[l.insn] = l.offset;
  }
  uint32_t next = static_cast<uint32_t>(code.size());
  for (size_t i = prog.insts.size(); i-- > 0;) {
    if (start[i] == kNone) start[i] = next;
    next = start[i];
  }
  std::vector<std::pair<uint32_t, uint32_t>> out;  // (offset, insn)
  for (size_t i = 0; i < prog.insts.size(); ++i)
    if (!prog.insts[i].second_half) out.push_back({start[i], static_cast<uint32_t>(i)});
  std::stable_sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.first < b.first; });
  return out;
}

std::string hex_bytes(const std::vector<uint8_t>& b) {
  std::string s;
  char buf[4];
  for (uint8_t x : b) std::snprintf(buf, sizeof buf, "%02x ", x), s += buf;
  if (!s.empty()) s.pop_back();
  return s;
}

}  // namespace

std::string NativeInsn::text() const {
  std::string s = operation;
  for (size_t i = 0; i < operands.size(); ++i) s += (i ? ", " : " ") + operands[i];
  return s;
}

std::vector<JitBlock> jit_listing(std::span<const uint8_t> code, std::span<const JitLine> lines,
                                  const Program& prog, AsmSyntax syntax) {
  auto starts = block_starts(code, lines, prog);
  std::vector<JitBlock> blocks;
  if (starts.empty() || starts[0].first > 0) blocks.push_back({});  // the prologue
  Decoder dec(syntax);
  size_t next = 0;  // the next block to open
  for (uint32_t off = 0;;) {
    // Open every block that starts at or before this instruction; only the
    // last one opened owns the code (the others emitted none).
    while (next < starts.size() && starts[next].first <= off) blocks.push_back({starts[next++].second, {}});
    if (off >= code.size()) break;
    NativeInsn n = dec.at(code, off);
    off += static_cast<uint32_t>(n.bytes.size());
    blocks.back().native.push_back(std::move(n));
  }
  return blocks;
}

std::vector<std::string> jit_listing_text(const std::vector<JitBlock>& blocks, const Program& prog,
                                          const JitTextOptions& opts) {
  std::vector<std::string> out;
  std::string last_source;
  char buf[64];
  for (const JitBlock& b : blocks) {
    if (!b.insn) {
      out.push_back("<prologue>:");
    } else {
      if (opts.source) {
        std::string src = opts.source(*b.insn);
        if (!src.empty() && src != last_source) out.push_back(src);
        if (!src.empty()) last_source = src;
      }
      std::snprintf(buf, sizeof buf, "%6u: ", *b.insn);
      out.push_back(buf + disassemble_insn(prog.insts[*b.insn], *b.insn) +
                    (opts.annotation ? opts.annotation(*b.insn) : std::string()));
    }
    for (const NativeInsn& n : b.native) {
      std::snprintf(buf, sizeof buf, "\t%6" PRIx32 ":\t", n.offset);
      std::string line = buf;
      if (opts.bytes) {
        std::string hex = hex_bytes(n.bytes);
        line += hex + std::string(hex.size() < 30 ? 30 - hex.size() : 1, ' ');
      }
      out.push_back(line + n.text());
    }
  }
  return out;
}

}  // namespace ember
