// Programs out of an ELF object, linked like libbpf links them: each function
// of a SEC() section is a program; the subprograms it calls (bpf-to-bpf
// calls, R_BPF_64_32, or function pointers, R_BPF_64_64 to code) are
// appended after it, transitively, and every call offset is rewritten for the
// new layout. ld_imm64 relocations against data sections are recorded for the
// map layer.
#include <map>
#include <optional>

#include "ember/object.hpp"

namespace ember {
namespace {

constexpr uint32_t kRelBpf64_64 = 1;   // R_BPF_64_64: ld_imm64
constexpr uint32_t kRelBpf64_32 = 10;  // R_BPF_64_32: call imm
constexpr uint8_t kSttFunc = 2;
constexpr uint8_t kSttSection = 3;
constexpr uint8_t kStbWeak = 2;
constexpr uint8_t kOpCall = 0x85, kOpLdImm64 = 0x18;

struct Func {
  std::string name;
  const ElfSection* sec;
  uint32_t start;  // instruction index in the section
  uint32_t len;
};

class Linker {
 public:
  Linker(const ElfFile& elf, std::span<const CorePatch> core) : elf_(elf), core_(core) {}

  Status index() {
    for (const ElfSection* sec : elf_.code_sections()) {
      auto insns = bytes_to_insns(sec->data);
      if (!insns) return fail(elf_.name(), ": section ", sec->name, ": ", insns.error().message);
      if (auto st = apply_core_patches(sec->name, *insns, core_, elf_.name()); !st) return st;
      code_[sec->index] = std::move(*insns);
      if (auto st = index_functions(*sec); !st) return st;
      auto rel = elf_.relocations_for(sec->index);
      if (!rel) return rel.error();
      for (const ElfReloc& r : *rel) relocs_[sec->index][static_cast<uint32_t>(r.offset / 8)] = r;
    }
    return ok_status();
  }

  const std::vector<Func>& functions() const { return funcs_; }

  Result<ObjectProgram> link(const Func& entry) {
    out_ = ObjectProgram{};
    placed_.clear();
    place(entry);
    // Functions are placed as they are first reached; `placed_` grows while
    // the loop walks it, so iterate by index.
    for (size_t k = 0; k < order_.size(); ++k)
      if (auto st = relocate(*order_[k], placed_[order_[k]]); !st) return st.error();
    order_.clear();
    return std::move(out_);
  }

 private:
  Status index_functions(const ElfSection& sec) {
    const auto& insns = code_[sec.index];
    auto syms = elf_.functions_in(sec.index);
    if (syms.empty()) {  // hand-written code without symbols: the section is one function
      funcs_.push_back({sec.name, &sec, 0, static_cast<uint32_t>(insns.size())});
      return ok_status();
    }
    for (size_t k = 0; k < syms.size(); ++k) {
      const ElfSymbol& s = *syms[k];
      if (s.value % 8 != 0 || s.value / 8 >= insns.size())
        return fail(elf_.name(), ": function '", s.name, "' in ", sec.name, " starts at byte ", s.value,
                    ", not at an instruction of the section");
      uint64_t start = s.value / 8;
      uint64_t end =
          s.size ? start + s.size / 8 : (k + 1 < syms.size() ? syms[k + 1]->value / 8 : insns.size());
      if (end > insns.size() || end <= start)
        return fail(elf_.name(), ": function '", s.name, "' in ", sec.name, " has size ", s.size,
                    " beyond the end of the section");
      funcs_.push_back({s.name, &sec, static_cast<uint32_t>(start), static_cast<uint32_t>(end - start)});
    }
    return ok_status();
  }

  size_t place(const Func& f) {
    size_t base = out_.insns.size();
    const auto& src = code_[f.sec->index];
    out_.insns.insert(out_.insns.end(), src.begin() + f.start, src.begin() + f.start + f.len);
    for (uint32_t i = 0; i < f.len; ++i) out_.origin.push_back({f.sec->index, f.start + i});
    placed_[&f] = base;
    order_.push_back(&f);
    return base;
  }

  const Func* function_at(uint32_t sec, uint64_t index) const {
    for (const Func& f : funcs_)
      if (f.sec->index == sec && index >= f.start && index < f.start + f.len) return &f;
    return nullptr;
  }

  Error at(const Func& f, uint32_t i, const std::string& what) const {
    return fail(elf_.name(), ": ", f.sec->name, " instruction ", f.start + i, " (in ", f.name, "): ", what);
  }

  // The code slot a call or function pointer names: (section, index).
  Result<std::pair<uint32_t, uint64_t>> code_target(const Func& f, uint32_t i, const RawInsn& insn,
                                                    const ElfReloc* rel) const {
    if (!rel) return std::pair{f.sec->index, static_cast<uint64_t>(f.start + i + 1 + insn.imm)};
    const ElfSymbol& sym = elf_.symbols()[rel->symbol];
    int64_t idx = insn.opcode == kOpCall ? static_cast<int64_t>(sym.value / 8) + insn.imm + 1
                                         : (static_cast<int64_t>(sym.value) + insn.imm) / 8;
    if (idx < 0) return at(f, i, "relocated target before the start of " + std::string(sym.name));
    return std::pair{static_cast<uint32_t>(sym.section), static_cast<uint64_t>(idx)};
  }

  // Points a call or function pointer at its callee, placing the callee if
  // it is not in the program yet.
  Status link_code_ref(const Func& f, size_t base, uint32_t i, const ElfReloc* rel) {
    const RawInsn insn = out_.insns[base + i];  // a copy: place() may grow out_.insns
    auto target = code_target(f, i, insn, rel);
    if (!target) return target.error();
    const Func* callee = function_at(target->first, target->second);
    if (!callee)
      return at(f, i,
                "calls instruction " + std::to_string(target->second) + " of section " +
                    std::to_string(target->first) + ", which belongs to no function");
    if (callee->sec != f.sec && callee->sec->name != ".text")
      return at(f, i, "calls '" + callee->name + "' in another program's section " + callee->sec->name);
    auto it = placed_.find(callee);
    size_t cbase = it != placed_.end() ? it->second : place(*callee);
    int64_t rel_off =
        static_cast<int64_t>(cbase + (target->second - callee->start)) - static_cast<int64_t>(base + i + 1);
    out_.insns[base + i].imm = static_cast<int32_t>(rel_off);
    if (insn.opcode == kOpLdImm64)
      out_.insns[base + i].set_regs(insn.dst(), static_cast<uint8_t>(Pseudo::Func));
    return ok_status();
  }

  Status link_data_ref(const Func& f, size_t base, uint32_t i, const ElfReloc& rel) {
    const ElfSymbol& sym = elf_.symbols()[rel.symbol];
    uint64_t addend = static_cast<uint32_t>(out_.insns[base + i].imm);
    if (sym.section == 0 && !sym.name.empty()) {
      // An extern (`__kconfig`): the runtime answers it with a value in a
      // .kconfig map, as libbpf does.
      out_.data_refs.push_back({base + i, sym.name, "", addend, sym.bind == kStbWeak});
      RawInsn& lo = out_.insns[base + i];
      lo.set_regs(lo.dst(), static_cast<uint8_t>(Pseudo::MapIdxValue));
      lo.imm = 0;
      out_.insns[base + i + 1].imm = 0;
      return ok_status();
    }
    if (sym.section == 0 || sym.section >= elf_.sections().size())
      return at(f, i, "ld_imm64 refers to '" + sym.name + "', which no section of the object defines");
    const ElfSection& sec = elf_.sections()[sym.section];
    out_.data_refs.push_back(
        {base + i, sym.type == kSttSection ? "" : sym.name, sec.name, sym.value + addend, false});
    // Mark the slot as the kernel's loader does (a map by index, or a value
    // of a map at an offset), so that nothing runs it as a plain constant
    // before the map layer fills the index in.
    bool is_map = sec.name == ".maps" || sec.name == "maps";
    RawInsn& lo = out_.insns[base + i];
    lo.set_regs(lo.dst(), static_cast<uint8_t>(is_map ? Pseudo::MapIdx : Pseudo::MapIdxValue));
    lo.imm = 0;
    out_.insns[base + i + 1].imm =
        is_map ? 0 : static_cast<int32_t>(static_cast<uint32_t>(sym.value + addend));
    return ok_status();
  }

  const ElfReloc* reloc_at(const Func& f, uint32_t i) const {
    auto s = relocs_.find(f.sec->index);
    if (s == relocs_.end()) return nullptr;
    auto r = s->second.find(f.start + i);
    return r == s->second.end() ? nullptr : &r->second;
  }

  Status relocate(const Func& f, size_t base) {
    for (uint32_t i = 0; i < f.len; ++i) {
      const RawInsn insn = out_.insns[base + i];
      const ElfReloc* rel = reloc_at(f, i);
      if (insn.opcode == kOpLdImm64 && i + 1 >= f.len) return at(f, i, "ld_imm64 is missing its second slot");
      bool local_call = insn.opcode == kOpCall && insn.src() == static_cast<uint8_t>(CallKind::Local);
      if (rel && local_call && rel->type != kRelBpf64_32)
        return at(f, i, "call with relocation type " + std::to_string(rel->type) + " (expected R_BPF_64_32)");
      if (local_call) {
        if (auto st = link_code_ref(f, base, i, rel); !st) return st;
      } else if (insn.opcode == kOpLdImm64 && rel) {
        if (rel->type != kRelBpf64_64)
          return at(f, i,
                    "ld_imm64 with relocation type " + std::to_string(rel->type) + " (expected R_BPF_64_64)");
        const ElfSymbol& sym = elf_.symbols()[rel->symbol];
        bool to_code = sym.type == kSttFunc || (sym.section < elf_.sections().size() &&
                                                code_.count(sym.section) && sym.type == kSttSection);
        auto st = to_code ? link_code_ref(f, base, i, rel) : link_data_ref(f, base, i, *rel);
        if (!st) return st;
      } else if (rel) {
        return at(f, i,
                  "relocation type " + std::to_string(rel->type) +
                      " on an instruction that is neither a call nor ld_imm64");
      }
      if (insn.opcode == kOpLdImm64) ++i;  // its second slot
    }
    return ok_status();
  }

  const ElfFile& elf_;
  std::span<const CorePatch> core_;
  std::map<uint32_t, std::vector<RawInsn>> code_;
  std::map<uint32_t, std::map<uint32_t, ElfReloc>> relocs_;
  std::vector<Func> funcs_;
  ObjectProgram out_;
  std::map<const Func*, size_t> placed_;
  std::vector<const Func*> order_;
};

std::string license_of(const ElfFile& elf) {
  const ElfSection* s = elf.section("license");
  if (!s) return "";
  std::string text(s->data.begin(), s->data.end());
  return text.substr(0, text.find('\0'));
}

}  // namespace

const ObjectProgram* ObjectFile::find(std::string_view name_or_section) const {
  for (const ObjectProgram& p : programs)
    if (p.name == name_or_section) return &p;
  for (const ObjectProgram& p : programs)
    if (p.section == name_or_section) return &p;
  return nullptr;
}

const BtfLineInfo* ObjectFile::source_line(const ObjectProgram& prog, size_t insn) const {
  if (!btf_ext || insn >= prog.origin.size()) return nullptr;
  const InsnOrigin& o = prog.origin[insn];
  if (o.section >= section_names.size()) return nullptr;
  return btf_ext->line_at(section_names[o.section], o.index);
}

std::string ObjectFile::where(const ObjectProgram& prog, size_t insn) const {
  const BtfLineInfo* l = source_line(prog, insn);
  if (!l) return "";
  std::string file = l->file.substr(l->file.find_last_of('/') + 1);
  std::string src = l->source;
  src.erase(0, src.find_first_not_of(" \t"));
  return " (" + file + ":" + std::to_string(l->line) + ": " + src + ")";
}

namespace {

// .BTF and .BTF.ext, when the object has them (clang -g writes both).
Status read_btf(const ElfFile& elf, ObjectFile& obj) {
  const ElfSection* b = elf.section(".BTF");
  if (!b) return ok_status();
  auto btf = Btf::parse(b->data, obj.name);
  if (!btf) return btf.error();
  obj.btf = std::make_shared<Btf>(std::move(*btf));
  if (const ElfSection* e = elf.section(".BTF.ext")) {
    auto ext = BtfExt::parse(e->data, *obj.btf, obj.name);
    if (!ext) return ext.error();
    obj.btf_ext = std::make_shared<BtfExt>(std::move(*ext));
  }
  return ok_status();
}

bool has_core_relos(const ObjectFile& obj) {
  if (!obj.btf_ext) return false;
  for (const auto& sec : obj.btf_ext->core_relos())
    if (!sec.records.empty()) return true;
  return false;
}

// CO-RE against the kernel's types where /sys/kernel/btf/vmlinux exists,
// and against the object's own BTF for types the kernel does not have
// (user-space structures, or no vmlinux BTF): per relocation, the kernel's
// answer when it has a candidate, else the object's own.
Result<std::vector<CorePatch>> core_patches(const ObjectFile& obj, const LinkOptions& opts) {
  if (!has_core_relos(obj)) return std::vector<CorePatch>{};
  auto own = resolve_core_relocations(*obj.btf, *obj.btf_ext, *obj.btf, obj.name);
  if (!own) return own.error();
  const Btf* kernel = opts.kernel_btf;
  std::optional<Btf> loaded;
  if (!kernel && opts.use_vmlinux) {
    if (auto v = Btf::load_file(opts.vmlinux_path)) loaded = std::move(*v), kernel = &*loaded;
  }
  if (!kernel) return own;
  auto from_kernel = resolve_core_relocations(*obj.btf, *obj.btf_ext, *kernel, obj.name);
  if (!from_kernel || from_kernel->size() != own->size()) return own;
  for (size_t i = 0; i < own->size(); ++i)
    if ((*from_kernel)[i].target_type_id != 0) (*own)[i] = (*from_kernel)[i];
  return own;
}

}  // namespace

Result<ObjectFile> load_object(std::span<const uint8_t> bytes, const std::string& name,
                               const LinkOptions& opts) {
  auto elf = ElfFile::parse(bytes, name);
  if (!elf) return elf.error();
  ObjectFile obj{name, license_of(*elf), {}, {}, nullptr, nullptr};
  for (const ElfSection& sec : elf->sections()) {
    if (obj.section_names.size() <= sec.index) obj.section_names.resize(sec.index + 1);
    obj.section_names[sec.index] = sec.name;
  }
  if (auto st = read_btf(*elf, obj); !st) return st.error();
  auto core = core_patches(obj, opts);
  if (!core) return core.error();
  Linker linker(*elf, *core);
  if (auto st = linker.index(); !st) return st.error();
  for (const Func& f : linker.functions()) {
    if (f.sec->name == ".text") continue;  // subprograms, linked into the programs that call them
    auto type = match_section(f.sec->name);
    if (!type) return fail(name, ": ", type.error().message);
    auto prog = linker.link(f);
    if (!prog) return prog.error();
    prog->name = f.name;
    prog->section = f.sec->name;
    prog->type = std::move(*type);
    obj.programs.push_back(std::move(*prog));
  }
  return obj;
}

}  // namespace ember
