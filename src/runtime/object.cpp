// Object: open an ELF object, collect the maps it declares (BTF-defined and
// legacy maps, global data sections, kconfig externs), and load it: create
// the maps, resolve references, prepare each program. libbpf's
// bpf_object__open / bpf_object__load, in user space.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "ember/elf.hpp"
#include "ember/map_defs.hpp"
#include "ember/runtime.hpp"
#include "runtime/kconfig.hpp"
#include "runtime/registry.hpp"

namespace ember {

namespace {

constexpr uint32_t kShtNobits = 8;
constexpr uint64_t kShfAlloc = 2;

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// libbpf's rule for global data sections: .data, .rodata, .bss and their
// dotted variants (.data.foo, .rodata.str1.1 ...).
bool is_data_section(std::string_view n) {
  for (std::string_view base : {".data", ".rodata", ".bss"})
    if (n == base || starts_with(n, std::string(base) + ".")) return true;
  return false;
}

bool is_map_section(std::string_view n) { return n == ".maps" || n == "maps"; }

}  // namespace

Object::Object(Runtime& rt, std::vector<uint8_t> bytes, std::string name)
    : rt_(rt), bytes_(std::move(bytes)) {
  linked_.name = std::move(name);
}

Object::~Object() { unload(); }

Result<std::unique_ptr<Object>> Object::open_file(Runtime& rt, const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return fail(path, ": cannot open");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::unique_ptr<Object> obj(new Object(rt, std::move(bytes), path));
  if (auto st = obj->open(); !st) return st.error();
  return obj;
}

Result<std::unique_ptr<Object>> Object::open_memory(Runtime& rt, std::span<const uint8_t> bytes,
                                                    std::string name) {
  std::unique_ptr<Object> obj(
      new Object(rt, std::vector<uint8_t>(bytes.begin(), bytes.end()), std::move(name)));
  if (auto st = obj->open(); !st) return st.error();
  return obj;
}

Status Object::open() {
  auto linked = load_object(bytes_, linked_.name);
  if (!linked) return linked.error();
  linked_ = std::move(*linked);
  auto elf = ElfFile::parse(bytes_, linked_.name);
  if (!elf) return elf.error();
  auto defs = parse_map_definitions(*elf, linked_.btf.get());
  if (!defs) return defs.error();
  defs_ = std::move(*defs);
  if (auto st = add_data_sections(); !st) return st;
  return add_kconfig();
}

// Each non-empty global data section becomes a one-element mmapable array
// holding the section's bytes; .rodata* is read-only to programs.
Status Object::add_data_sections() {
  auto elf = ElfFile::parse(bytes_, linked_.name);
  if (!elf) return elf.error();
  for (const ElfSection& sec : elf->sections()) {
    if (!is_data_section(sec.name) || !(sec.flags & kShfAlloc) || sec.size == 0) continue;
    if (sec.size > (1u << 30)) return fail(linked_.name, ": section ", sec.name, " is too large for a map");
    MapDef d;
    d.name = sec.name;
    d.section = sec.name;
    d.type = static_cast<uint32_t>(MapType::Array);
    d.key_size = 4;
    d.value_size = static_cast<uint32_t>(sec.size);
    d.max_entries = 1;
    d.map_flags = map_flag::kMmapable | (starts_with(sec.name, ".rodata") ? map_flag::kRdonlyProg : 0);
    if (sec.type == kShtNobits)
      d.initial_value.assign(sec.size, 0);
    else
      d.initial_value.assign(sec.data.begin(), sec.data.end());
    defs_.push_back(std::move(d));
  }
  return ok_status();
}

// Externs get 8 bytes each in a ".kconfig" array; values are filled in at
// load, so that an unanswerable extern fails the load, not the open.
Status Object::add_kconfig() {
  for (const ObjectProgram& p : linked_.programs)
    for (const DataRef& r : p.data_refs)
      if (r.section.empty() && std::find(externs_.begin(), externs_.end(), r.symbol) == externs_.end())
        externs_.push_back(r.symbol);
  if (externs_.empty()) return ok_status();
  MapDef d;
  d.name = d.section = ".kconfig";
  d.type = static_cast<uint32_t>(MapType::Array);
  d.key_size = 4;
  d.value_size = static_cast<uint32_t>(8 * externs_.size());
  d.max_entries = 1;
  d.map_flags = map_flag::kMmapable | map_flag::kRdonlyProg;
  d.initial_value.assign(d.value_size, 0);
  defs_.push_back(std::move(d));
  return ok_status();
}

int Object::def_index(std::string_view name) const {
  for (size_t i = 0; i < defs_.size(); ++i)
    if (defs_[i].name == name) return static_cast<int>(i);
  return -1;
}

Result<std::span<uint8_t>> Object::global_data(std::string_view section) {
  int i = def_index(section);
  if (i < 0 || !is_data_section(section))
    return fail(linked_.name, ": no global data section '", section, "'");
  if (!loaded_) return std::span<uint8_t>(defs_[i].initial_value);
  return std::span<uint8_t>(maps_[i]->mmap_data(), maps_[i]->spec().value_size);
}

Status Object::create_maps() {
  for (MapDef& d : defs_) {
    if (d.name == ".kconfig") {
      for (size_t k = 0; k < externs_.size(); ++k) {
        bool weak = false;
        for (const ObjectProgram& p : linked_.programs)
          for (const DataRef& r : p.data_refs)
            if (r.section.empty() && r.symbol == externs_[k]) weak = r.weak;
        auto v = kconfig_value(externs_[k], weak);
        if (!v) return fail(linked_.name, ": ", v.error().message);
        std::memcpy(d.initial_value.data() + 8 * k, &*v, 8);
      }
    }
    std::string pin = d.pinning == MapPinning::ByName ? pin_dir() + "/" + d.name : "";
    if (!pin.empty())
      if (auto st = ensure_pin_dir(); !st)
        return fail(linked_.name, ": map '", d.name, "': ", st.error().message);
    bool pinned_before = !pin.empty() && access(pin.c_str(), F_OK) == 0;
    auto m = rt_.create_map(MapSpec::from_def(d), pin);
    if (m && !pin.empty() && !pinned_before) new_pins_.push_back(pin);
    if (!m) return fail(linked_.name, ": ", m.error().message);
    maps_.push_back(*m);
    if (!d.initial_value.empty())
      std::memcpy((*m)->mmap_data(), d.initial_value.data(), d.initial_value.size());
  }
  return ok_status();
}

Result<Object::Resolved> Object::resolve_ref(const DataRef& ref) const {
  if (ref.section.empty()) {
    size_t k = std::find(externs_.begin(), externs_.end(), ref.symbol) - externs_.begin();
    const MapPtr& m = maps_[def_index(".kconfig")];
    return Resolved{m, reinterpret_cast<uint64_t>(m->mmap_data()) + 8 * k, true, 8 * k};
  }
  if (is_map_section(ref.section)) {
    int i = def_index(ref.symbol);
    if (i < 0) return fail("refers to map '", ref.symbol, "', which the object does not define");
    return Resolved{maps_[i], reinterpret_cast<uint64_t>(maps_[i].get()), false, 0};
  }
  int i = def_index(ref.section);
  if (i < 0)
    return fail("refers to '", ref.symbol, "' in section ", ref.section, ", which is not a data section");
  const MapPtr& m = maps_[i];
  if (ref.offset >= m->spec().value_size)
    return fail("refers to byte ", ref.offset, " of ", ref.section, ", which has ", m->spec().value_size);
  return Resolved{m, reinterpret_cast<uint64_t>(m->mmap_data()) + ref.offset, true, ref.offset};
}

// Two copies of the code: as linked, maps named map[idx] / map_value[idx]
// by their index in the program's map list; and as it runs, with addresses.
Status Object::prepare(Prog& p) {
  std::vector<RawInsn> named = p.linked_.insns, exec = p.linked_.insns;
  for (const DataRef& ref : p.linked_.data_refs) {
    auto r = resolve_ref(ref);
    if (!r)
      return fail(linked_.name, ": section ", p.section(), ", program ", p.name(), ", instruction ", ref.insn,
                  linked_.where(p.linked_, ref.insn), ": ", r.error().message);
    auto it = std::find(p.maps_.begin(), p.maps_.end(), r->map);
    size_t idx = it - p.maps_.begin();
    if (it == p.maps_.end()) {
      p.maps_.push_back(r->map);
      if (r->value)
        p.static_regions_.push_back({reinterpret_cast<uint64_t>(r->map->mmap_data()),
                                     r->map->spec().value_size,
                                     !(r->map->spec().map_flags & map_flag::kRdonlyProg)});
    }
    RawInsn& lo = named[ref.insn];
    lo.set_regs(lo.dst(), static_cast<uint8_t>(r->value ? Pseudo::MapIdxValue : Pseudo::MapIdx));
    lo.imm = static_cast<int32_t>(idx);
    named[ref.insn + 1].imm = static_cast<int32_t>(r->offset);
    exec[ref.insn].set_regs(exec[ref.insn].dst(), 0);
    exec[ref.insn].imm = static_cast<int32_t>(static_cast<uint32_t>(r->address));
    exec[ref.insn + 1].imm = static_cast<int32_t>(static_cast<uint32_t>(r->address >> 32));
  }
  auto where = [&](const Error& e) {
    return fail(linked_.name, ": section ", p.section(), ", program ", p.name(), ": ", e.message);
  };
  auto code = decode(named);
  if (!code) return where(code.error());
  auto exec_code = decode(exec);
  if (!exec_code) return where(exec_code.error());
  p.code_ = std::move(*code);
  p.exec_code_ = std::move(*exec_code);
  auto interp = Interpreter::create(p.exec_code_, rt_.helpers());
  if (!interp) return where(interp.error());
  p.interp_ = std::make_unique<Interpreter>(std::move(*interp));
  return ok_status();
}

// libbpf's `values = { [i] = &prog_or_map }`, once programs and maps have ids.
Status Object::fill_init_slots() {
  for (size_t i = 0; i < defs_.size(); ++i) {
    for (const MapInitSlot& slot : defs_[i].init_slots) {
      uint32_t id = 0;
      if (maps_[i]->type() == MapType::ProgArray) {
        Prog* p = prog(slot.symbol);
        id = p ? p->id() : 0;
      } else if (Map* m = map(slot.symbol)) {
        id = m->id();
      }
      if (!id)
        return fail(linked_.name, ": map '", defs_[i].name, "' slot ", slot.index, " names '", slot.symbol,
                    "', which the object does not define");
      if (int e = maps_[i]->update(&slot.index, &id, kBpfAny))
        return fail(linked_.name, ": map '", defs_[i].name, "' slot ", slot.index, ": error ", -e);
    }
  }
  return ok_status();
}

Status Object::load(const LoadOptions& opts) {
  if (loaded_) return fail(linked_.name, ": already loaded");
  auto attempt = [&]() -> Status {
    if (auto st = create_maps(); !st) return st;
    for (const ObjectProgram& op : linked_.programs) {
      std::unique_ptr<Prog> p(new Prog());
      p->obj_ = this;
      p->rt_ = &rt_;
      p->linked_ = op;
      p->use_jit_ = opts.jit;
      p->blind_constants_ = opts.blind_constants;
      if (auto st = prepare(*p); !st) return st;
      if (auto st = verify_prog(*p, opts); !st) return st;
      p->id_ = rt_.add_prog(p.get());
      progs_.push_back(std::move(p));
    }
    loaded_ = true;  // map(), prog() and global_data() serve the live objects from here
    return fill_init_slots();
  };
  Status st = attempt();
  if (!st) {
    unload();  // nothing half-loaded stays in the runtime
    // Nor in the pin directory: maps this load pinned go again, as libbpf
    // unpins them when bpf_object__load fails.
    for (const std::string& p : new_pins_) unlink(p.c_str());
  }
  new_pins_.clear();
  return st;
}

void Object::unload() {
  for (auto& p : progs_) rt_.release_prog(p->id());
  progs_.clear();
  for (auto& m : maps_) rt_.release_map(m->id());
  maps_.clear();
  loaded_ = false;
}

Map* Object::map(std::string_view name) const {
  int i = def_index(name);
  return i >= 0 && static_cast<size_t>(i) < maps_.size() ? maps_[i].get() : nullptr;
}

Prog* Object::prog(std::string_view name_or_section) const {
  for (auto& p : progs_)
    if (p->name() == name_or_section) return p.get();
  for (auto& p : progs_)
    if (p->section() == name_or_section) return p.get();
  return nullptr;
}

std::vector<Prog*> Object::progs() const {
  std::vector<Prog*> out;
  for (auto& p : progs_) out.push_back(p.get());
  return out;
}

// The verifier's verdict before anything runs; a rejection is a load error
// that names the object, section, program, instruction and source line.
Status Object::verify_prog(Prog& p, const LoadOptions& opts) {
  if (!opts.verify) return ok_status();
  VerifyResult r = p.verify(opts.log_level);
  if (r.ok) return ok_status();
  return fail(linked_.name, ": section ", p.section(), ", program ", p.name(), ": the verifier rejects it [",
              reason_name(r.reason), "]: ", r.message, r.state.empty() ? "" : "\n  state: " + r.state,
              r.log.empty() ? "" : "\n" + r.log);
}

VerifyResult Prog::verify(int log_level) {
  VerifyInput in = verify_input();
  in.log_level = log_level;
  VerifyResult r = ember::verify(code_, in);
  verify_stats_ = r.stats;
  verified_ = r.ok;
  jit_.reset();
  jit_error_.clear();
  jit_hints_ = r.ok ? jit_hints(r.facts) : std::vector<JitHint>{};
  if (r.ok) compile_jit();
  if (id_) rt_->prog_changed();  // verified after load: `ember prog show` sees its JIT code
  return r;
}

// At verification, not at first run: a failure is known (and reported) before
// anything runs, run() stays free of locks and first-run latency, and the
// code goes with the Prog when its object unloads.
void Prog::compile_jit() {
#if defined(__x86_64__) && defined(__linux__)
  if (!use_jit_) {
    jit_error_ = "the JIT is off (LoadOptions::jit)";
    return;
  }
  JitOptions jo;
  jo.blind_constants = blind_constants_;
  jo.hints = jit_hints_;  // what the verifier proved: dead code, safe divisors
  auto j = JitProgram::compile(*interp_, jo);
  if (!j) {
    jit_error_ = "the JIT failed, the interpreter runs it: " + j.error().message;
    return;
  }
  jit_ = std::make_unique<JitProgram>(std::move(*j));
#else
  jit_error_ = "no JIT for this machine (x86-64 Linux only)";
#endif
}

VerifyInput Prog::verify_input() const {
  VerifyInput in;
  in.type = type();
  in.attach = linked_.type.def->attach_type;
  const std::string& lic = obj_->license();
  // license_is_gpl_compatible in the kernel.
  in.gpl = lic == "GPL" || lic == "GPL v2" || lic == "GPL and additional rights" || lic == "Dual BSD/GPL" ||
           lic == "Dual MIT/GPL" || lic == "Dual MPL/GPL";
  for (const MapPtr& m : maps_) {
    in.maps.push_back(m->spec());
    std::vector<uint8_t> bytes;
    if ((m->spec().map_flags & map_flag::kRdonlyProg) && m->mmap_data())
      bytes.assign(m->mmap_data(), m->mmap_data() + m->spec().value_size);
    in.rodata.push_back(std::move(bytes));
  }
  const ObjectFile& file = obj_->file();
  const ObjectProgram& op = linked_;
  in.source_line = [&file, &op](size_t i) {
    std::string w = file.where(op, i);  // " (file.c:12: text)"
    return w.size() > 3 ? w.substr(2, w.size() - 3) : std::string();
  };
  return in;
}

}  // namespace ember
