#include "attach/x86_relocate.hpp"

#include <Zydis/Zydis.h>

#include <cstring>
#include <limits>

namespace ember::attach {
namespace {

std::string hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

void put32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

struct Decoded {
  ZydisDecodedInstruction insn;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
};

bool decode(const ZydisDecoder& dec, uintptr_t ip, size_t avail, Decoded& d) {
  return ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, reinterpret_cast<const void*>(ip), avail < 15 ? avail : 15,
                                             &d.insn, d.ops));
}

ZydisDecoder make_decoder() {
  ZydisDecoder dec;
  ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  return dec;
}

// Instructions after which execution does not fall through, or that stand
// for padding: a window that needs more bytes after one of them would
// overwrite something that is not this function's straight-line code.
bool ends_flow(const ZydisDecodedInstruction& insn) {
  switch (insn.meta.category) {
    case ZYDIS_CATEGORY_RET:
    case ZYDIS_CATEGORY_UNCOND_BR: return true;
    default: break;
  }
  return insn.mnemonic == ZYDIS_MNEMONIC_INT3 || insn.mnemonic == ZYDIS_MNEMONIC_HLT ||
         insn.mnemonic == ZYDIS_MNEMONIC_UD2 || insn.mnemonic == ZYDIS_MNEMONIC_UD1 ||
         insn.mnemonic == ZYDIS_MNEMONIC_UD0;
}

bool has_rip_operand(const Decoded& d) {
  for (int i = 0; i < d.insn.operand_count; ++i)
    if (d.ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY && d.ops[i].mem.base == ZYDIS_REGISTER_RIP) return true;
  return false;
}

int64_t branch_target(const Decoded& d, uintptr_t ip) {
  return static_cast<int64_t>(ip + d.insn.length) + d.insn.raw.imm[0].value.s;
}

// A relative jcc/jmp/call rewritten to reach any address from anywhere.
Status relocate_branch(const Decoded& d, uintptr_t ip, uint64_t target, bool last,
                       std::vector<uint8_t>& out) {
  const auto& insn = d.insn;
  switch (insn.meta.category) {
    case ZYDIS_CATEGORY_COND_BR: {
      if (insn.mnemonic == ZYDIS_MNEMONIC_JRCXZ || insn.mnemonic == ZYDIS_MNEMONIC_JECXZ ||
          insn.mnemonic == ZYDIS_MNEMONIC_LOOP || insn.mnemonic == ZYDIS_MNEMONIC_LOOPE ||
          insn.mnemonic == ZYDIS_MNEMONIC_LOOPNE)
        return fail("cannot relocate ", ZydisMnemonicGetString(insn.mnemonic), " at ", hex(ip));
      uint8_t cc = insn.opcode & 0xF;  // 7x rel8 and 0F 8x rel32 share the condition nibble
      out.push_back(static_cast<uint8_t>(0x70 | (cc ^ 1)));  // inverted condition skips the jump
      out.push_back(14);
      emit_abs_jmp(out, target);
      return ok_status();
    }
    case ZYDIS_CATEGORY_UNCOND_BR: emit_abs_jmp(out, target); return ok_status();
    case ZYDIS_CATEGORY_CALL: {
      if (last) {
        // The callee returns to the original code right after the window,
        // so unwinders and return hooks see the real caller.
        uint64_t ret = ip + insn.length;
        const uint8_t lea[] = {0x48, 0x8D, 0x64, 0x24, 0xF8};  // lea rsp, [rsp-8]
        out.insert(out.end(), lea, lea + sizeof lea);
        const uint8_t lo[] = {0xC7, 0x04, 0x24};  // mov dword [rsp], imm32
        out.insert(out.end(), lo, lo + 3);
        put32(out, static_cast<uint32_t>(ret));
        const uint8_t hi[] = {0xC7, 0x44, 0x24, 0x04};  // mov dword [rsp+4], imm32
        out.insert(out.end(), hi, hi + 4);
        put32(out, static_cast<uint32_t>(ret >> 32));
        emit_abs_jmp(out, target);
      } else {
        // call [rip+2]; jmp +8; .quad target: returns into the trampoline,
        // which goes on with the rest of the window.
        const uint8_t seq[] = {0xFF, 0x15, 0x02, 0x00, 0x00, 0x00, 0xEB, 0x08};
        out.insert(out.end(), seq, seq + sizeof seq);
        put64(out, target);
      }
      return ok_status();
    }
    default: return fail("cannot relocate relative ", ZydisMnemonicGetString(insn.mnemonic), " at ", hex(ip));
  }
}

}  // namespace

void emit_abs_jmp(std::vector<uint8_t>& out, uint64_t target) {
  const uint8_t jmp[] = {0xFF, 0x25, 0x00, 0x00, 0x00, 0x00};
  out.insert(out.end(), jmp, jmp + sizeof jmp);
  put64(out, target);
}

Result<Relocation> relocate(uintptr_t src, size_t readable, size_t min_bytes, uintptr_t dest) {
  ZydisDecoder dec = make_decoder();
  Relocation r;
  std::vector<uint64_t> targets;
  size_t off = 0;
  while (off < min_bytes) {
    uintptr_t ip = src + off;
    Decoded d;
    if (off >= readable || !decode(dec, ip, readable - off, d))
      return fail("cannot decode the instruction at ", hex(ip));
    const size_t len = d.insn.length;
    const bool last = off + len >= min_bytes;
    if (d.insn.mnemonic == ZYDIS_MNEMONIC_INT3)
      return fail("int3 at ", hex(ip), " (a breakpoint or padding)");
    if (ends_flow(d.insn) && !last)
      return fail("the function at ", hex(src), " ends after ", off + len, " bytes, fewer than the ",
                  min_bytes, " a jump needs");
    if (d.insn.mnemonic == ZYDIS_MNEMONIC_XBEGIN) return fail("cannot relocate xbegin at ", hex(ip));
    if (d.insn.raw.imm[0].is_relative) {
      uint64_t target = branch_target(d, ip);
      targets.push_back(target);
      if (auto st = relocate_branch(d, ip, target, last, r.code); !st) return st.error();
    } else {
      size_t at = r.code.size();
      r.code.insert(r.code.end(), reinterpret_cast<const uint8_t*>(ip),
                    reinterpret_cast<const uint8_t*>(ip) + len);
      if (has_rip_operand(d)) {
        int64_t target = static_cast<int64_t>(ip + len) + d.insn.raw.disp.value;
        int64_t disp = target - static_cast<int64_t>(dest + at + len);
        if (d.insn.raw.disp.size != 32 || disp < std::numeric_limits<int32_t>::min() ||
            disp > std::numeric_limits<int32_t>::max())
          return fail("the RIP-relative operand at ", hex(ip), " cannot reach ", hex(target), " from ",
                      hex(dest));
        int32_t d32 = static_cast<int32_t>(disp);
        std::memcpy(&r.code[at + d.insn.raw.disp.offset], &d32, 4);
      }
    }
    off += len;
    ++r.instructions;
  }
  r.window = off;
  for (uint64_t t : targets)
    if (t > src && t < src + off)
      return fail("a branch in the window at ", hex(src), " lands inside it (", hex(t), ")");
  return r;
}

Status check_no_branch_into(uintptr_t src, size_t readable, size_t window, size_t scan) {
  ZydisDecoder dec = make_decoder();
  size_t end = window + scan < readable ? window + scan : readable;
  for (size_t off = window; off < end;) {
    Decoded d;
    if (!decode(dec, src + off, end - off, d) || d.insn.mnemonic == ZYDIS_MNEMONIC_INT3) break;
    if (d.insn.raw.imm[0].is_relative) {
      uint64_t t = branch_target(d, src + off);
      if (t > src && t < src + window)
        return fail("the branch at ", hex(src + off), " lands inside the patch window at ", hex(src), " (",
                    hex(t), ")");
    }
    off += d.insn.length;
  }
  return ok_status();
}

}  // namespace ember::attach
