// Bytecode -> typed IR, with the structural checks the kernel makes before
// its verifier proper runs (check_subprogs, check_cfg and the reserved-field
// checks of do_check): every rejection names the instruction index.
#include <cassert>
#include <cstring>
#include <sstream>

#include "ember/isa.hpp"

namespace ember {
namespace {

std::string hex8(unsigned v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

Error at(size_t idx, const std::string& what) { return fail("instruction ", idx, ": ", what); }

bool writes_dst(Form f) {
  switch (f) {
    case Form::AluImm:
    case Form::AluReg:
    case Form::AluUnary:
    case Form::Endian:
    case Form::LdImm64:
    case Form::Ldx: return true;
    default: return false;
  }
}

}  // namespace

FormFields form_fields(Form f) {
  switch (f) {
    case Form::AluImm: return {true, false, false, true};
    case Form::AluReg: return {true, true, false, false};
    case Form::AluUnary: return {true, false, false, false};
    case Form::Endian: return {true, false, false, true};
    case Form::LdImm64: return {true, true, false, true};
    case Form::LdAbs: return {false, false, false, true};
    case Form::LdInd: return {false, true, false, true};
    case Form::Ldx: return {true, true, true, false};
    case Form::St: return {true, false, true, true};
    case Form::Stx: return {true, true, true, false};
    case Form::Atomic: return {true, true, true, true};
    case Form::Ja: return {false, false, true, false};
    case Form::Ja32: return {false, false, false, true};
    case Form::JmpImm: return {true, false, true, true};
    case Form::JmpReg: return {true, true, true, false};
    case Form::Call: return {false, true, false, true};
    case Form::CallLocal: return {false, true, false, true};
    case Form::CallX: return {true, false, false, false};
    case Form::Exit: return {false, false, false, false};
  }
  return {};
}

namespace {

Result<Inst> decode_one(std::span<const RawInsn> raw, size_t i) {
  const RawInsn& r = raw[i];
  const OpInfo* info = lookup_opcode(r);
  if (!info) {
    for (const OpInfo& o : op_table())
      if (o.opcode == r.opcode)
        return at(i, "opcode " + hex8(r.opcode) + " (" + o.mnemonic + ") with an invalid " +
                         (o.match == Match::Off   ? "offset " + std::to_string(r.off)
                          : o.match == Match::Src ? "src " + std::to_string(r.src())
                                                  : "immediate " + std::to_string(r.imm)));
    return at(i, "unknown opcode " + hex8(r.opcode));
  }
  FormFields u = form_fields(info->form);
  if (u.dst && r.dst() > kFramePointer) return at(i, "invalid register r" + std::to_string(r.dst()));
  if (u.src && info->form != Form::LdImm64 && info->match != Match::Src && r.src() > kFramePointer)
    return at(i, "invalid register r" + std::to_string(r.src()));
  if (!u.dst && r.dst() != 0) return at(i, std::string(info->mnemonic) + " uses reserved dst field");
  if (!u.src && r.src() != 0) return at(i, std::string(info->mnemonic) + " uses reserved src field");
  if (!u.off && info->match != Match::Off && r.off != 0)
    return at(i, std::string(info->mnemonic) + " uses reserved offset field");
  if (!u.imm && info->match != Match::Imm && r.imm != 0)
    return at(i, std::string(info->mnemonic) + " uses reserved immediate field");
  if (writes_dst(info->form) && r.dst() == kFramePointer)
    return at(i, "write to the read-only frame pointer r10");
  // Fetching atomics load the old value into src, except cmpxchg, which loads
  // it into r0 (as in the kernel's check_atomic).
  if (info->form == Form::Atomic && (r.imm & 1) && r.imm != 0xf1 && r.src() == kFramePointer)
    return at(i, "atomic fetch would write the read-only frame pointer r10");

  Inst inst;
  inst.op = info->op;
  inst.dst = r.dst();
  inst.src = r.src();
  inst.off = r.off;
  inst.imm = r.imm;
  inst.imm64 = static_cast<uint64_t>(static_cast<int64_t>(r.imm));
  if (info->form == Form::LdImm64) {
    if (r.src() > static_cast<uint8_t>(Pseudo::MapIdxValue))
      return at(i, "ld_imm64 with unknown pseudo source " + std::to_string(r.src()));
    if (i + 1 >= raw.size()) return at(i, "ld_imm64 is missing its second slot");
    const RawInsn& hi = raw[i + 1];
    if (hi.opcode != 0 || hi.regs != 0 || hi.off != 0)
      return at(i + 1, "second slot of ld_imm64 must have zero opcode, registers and offset");
    // Only map values (offset) and BTF ids (module BTF fd) use the second
    // immediate; the kernel rejects it elsewhere ("unrecognized bpf_ld_imm64").
    Pseudo p = static_cast<Pseudo>(r.src());
    if (hi.imm != 0 && (p == Pseudo::MapFd || p == Pseudo::MapIdx || p == Pseudo::Func))
      return at(i + 1, "second slot of this ld_imm64 must have a zero immediate");
    inst.imm64 = (static_cast<uint64_t>(static_cast<uint32_t>(hi.imm)) << 32) | static_cast<uint32_t>(r.imm);
  }
  return inst;
}

// Jump and call targets, checked once every slot is decoded.
Status resolve_target(std::vector<Inst>& insts, size_t i) {
  Inst& inst = insts[i];
  int64_t rel = 0;
  switch (inst.info().form) {
    case Form::Ja:
    case Form::JmpImm:
    case Form::JmpReg: rel = inst.off; break;
    case Form::Ja32:
    case Form::CallLocal: rel = inst.imm; break;
    case Form::LdImm64:
      if (inst.pseudo() != Pseudo::Func) return ok_status();
      rel = inst.imm;
      break;
    default: return ok_status();
  }
  int64_t target = static_cast<int64_t>(i) + 1 + rel;
  if (target < 0 || target >= static_cast<int64_t>(insts.size()))
    return at(i, "jump out of range to " + std::to_string(target) + " (program has " +
                     std::to_string(insts.size()) + " instructions)");
  if (insts[target].second_half)
    return at(i, "jump into the middle of ld_imm64 at " + std::to_string(target - 1));
  inst.target = static_cast<uint32_t>(target);
  return ok_status();
}

}  // namespace

Result<Inst> decode_insn(std::span<const RawInsn> raw, size_t index) {
  assert(index < raw.size());
  return decode_one(raw, index);
}

Result<Program> decode(std::span<const RawInsn> raw) {
  if (raw.empty()) return fail("empty program: no instructions");
  if (raw.size() > (1u << 20))
    return fail("program too large: ", raw.size(), " instructions (limit 1048576)");
  Program prog;
  prog.raw.assign(raw.begin(), raw.end());
  prog.insts.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    auto inst = decode_one(raw, i);
    if (!inst) return inst.error();
    prog.insts.push_back(*inst);
    if (inst->op == Op::LDDW) {
      Inst hi = *inst;
      hi.second_half = true;
      prog.insts.push_back(hi);
      ++i;
    }
  }
  for (size_t i = 0; i < prog.insts.size(); ++i) {
    if (prog.insts[i].second_half) continue;
    if (auto st = resolve_target(prog.insts, i); !st) return st.error();
  }
  // Falling off the end: the last instruction must leave (exit) or jump.
  size_t last = prog.insts.size() - 1;
  const Inst& end = prog.insts[last];
  if (end.second_half || (end.op != Op::EXIT && end.op != Op::JA && end.op != Op::JA32))
    return at(last,
              "the last instruction is not exit or an unconditional jump: execution would fall off the end");
  return prog;
}

Result<std::vector<RawInsn>> bytes_to_insns(std::span<const uint8_t> bytes) {
  if (bytes.size() % sizeof(RawInsn) != 0)
    return fail("bytecode length ", bytes.size(), " is not a multiple of 8 (", bytes.size() / 8,
                " whole instructions and ", bytes.size() % 8, " stray bytes)");
  std::vector<RawInsn> out(bytes.size() / sizeof(RawInsn));
  if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

std::vector<uint8_t> insns_to_bytes(std::span<const RawInsn> insns) {
  std::vector<uint8_t> out(insns.size() * sizeof(RawInsn));
  if (!insns.empty()) std::memcpy(out.data(), insns.data(), out.size());
  return out;
}

Result<Program> decode_bytes(std::span<const uint8_t> bytes) {
  auto insns = bytes_to_insns(bytes);
  if (!insns) return insns.error();
  return decode(*insns);
}

void encode(const Inst& inst, std::vector<RawInsn>& out) {
  if (inst.second_half) return;
  const OpInfo& info = inst.info();
  RawInsn r;
  r.opcode = info.opcode;
  r.set_regs(inst.dst, inst.src);
  r.off = inst.off;
  r.imm = inst.imm;
  switch (info.match) {
    case Match::Off: r.off = static_cast<int16_t>(info.disc); break;
    case Match::Imm: r.imm = info.disc; break;
    case Match::Src: r.set_regs(inst.dst, static_cast<uint8_t>(info.disc)); break;
    case Match::None: break;
  }
  out.push_back(r);
  if (info.form == Form::LdImm64) {
    out.back().imm = static_cast<int32_t>(static_cast<uint32_t>(inst.imm64));
    RawInsn hi;
    hi.imm = static_cast<int32_t>(static_cast<uint32_t>(inst.imm64 >> 32));
    out.push_back(hi);
  }
}

}  // namespace ember
