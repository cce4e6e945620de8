// Map definitions of an object, read the way libbpf reads them
// (libbpf.c: bpf_object__init_user_btf_maps, parse_btf_map_def,
// bpf_object__collect_map_relos, bpf_object__init_user_maps):
//
//  - `.maps`: a DATASEC of VARs, each a struct whose members encode the
//    attributes in their types: `int (*type)[N]` (pointer to an array of N)
//    for integers, `T *key` / `T *value` for key and value types, and a
//    trailing zero-length `values` array of pointers whose initializers,
//    seen as relocations in `.rel.maps`, fill prog arrays and maps of maps.
//  - `maps`: legacy `struct bpf_map_def` records, one per symbol.
#include "ember/map_defs.hpp"

#include <algorithm>
#include <cstring>

namespace ember {
namespace {

// BPF_MAP_TYPE_* that need special handling here (linux/bpf.h numbering).
constexpr uint32_t kProgArray = 3, kPerfEventArray = 4, kArrayOfMaps = 12, kHashOfMaps = 13;
constexpr uint32_t kRingbuf = 27, kUserRingbuf = 31, kMaxMapType = 33;
constexpr uint32_t kVarStatic = 0, kVarGlobal = 1;  // BTF_VAR_* linkages a map may have
constexpr uint32_t kLegacyDefSize = 20;             // sizeof(struct bpf_map_def)
constexpr uint8_t kSttFunc = 2;

bool is_map_in_map(uint32_t type) { return type == kArrayOfMaps || type == kHashOfMaps; }

// Map types whose elements carry no value the program declares.
bool value_optional(uint32_t type) {
  return type == kRingbuf || type == kUserRingbuf || type == kPerfEventArray || type == kProgArray ||
         is_map_in_map(type);
}

// What every definition needs before the map layer checks the rest by type.
Status validate_def(const std::string& file, const MapDef& d) {
  auto e = [&](auto&&... parts) -> Status { return fail(file, ": map '", d.name, "': ", parts...); };
  if (d.type == 0 || d.type > kMaxMapType) return e("unknown map type ", d.type);
  if (d.max_entries == 0 && d.type != kPerfEventArray)
    return e("max_entries 0");  // libbpf: perf arrays get one per CPU
  if (d.value_size == 0 && !value_optional(d.type)) return e("value_size 0");
  return ok_status();
}

// Where a map's variable lives in `.maps`.
struct MapVar {
  std::string name;
  uint32_t struct_id = 0;
  uint64_t offset = 0, size = 0;
  uint32_t values_offset = 0;  // byte offset of `values` in the struct; 0 if none
  bool has_values = false;
};

class BtfMapParser {
 public:
  BtfMapParser(const ElfFile& elf, const Btf& btf, MapDefOptions opts) : elf_(elf), btf_(btf), opts_(opts) {}

  Status run(const ElfSection& sec, std::vector<MapDef>& out) {
    uint32_t datasec = btf_.find(".maps", BtfKind::Datasec);
    if (datasec == 0) return fail(elf_.name(), ": .maps: no DATASEC '.maps' in BTF");
    std::vector<MapVar> vars;
    for (const BtfVarSecinfo& si : btf_.secinfos(datasec)) {
      auto var = map_var(si);
      if (!var) return var.error();
      auto def = parse_def(var->struct_id, var->name, false, &*var);
      if (!def) return def.error();
      def->section = ".maps";
      out.push_back(std::move(*def));
      vars.push_back(std::move(*var));
    }
    return collect_slots(sec, vars, std::span(out).last(vars.size()));
  }

 private:
  template <class... Parts>
  Error err(std::string_view map, Parts&&... parts) const {
    return fail(elf_.name(), ": map '", map, "': ", std::forward<Parts>(parts)...);
  }

  // The VAR, its struct, and its place in the section: from the ELF symbol
  // (libbpf fills DATASEC offsets in from symbols too: btf_fixup_datasec).
  Result<MapVar> map_var(const BtfVarSecinfo& si) const {
    const BtfType* var = btf_.type(si.type);
    if (!var || var->kind != BtfKind::Var)
      return fail(elf_.name(), ": .maps: entry ", si.type, " is not a VAR");
    MapVar mv;
    mv.name = var->name;
    if (var->linkage != kVarStatic && var->linkage != kVarGlobal)
      return err(mv.name, "unsupported linkage ", var->linkage);
    mv.struct_id = btf_.resolve(var->type);
    if (btf_.kind(mv.struct_id) != BtfKind::Struct)
      return err(mv.name, "definition is ", btf_.to_string(var->type), ", not a struct");
    mv.offset = si.offset, mv.size = si.size;
    const ElfSection* sec = elf_.section(".maps");
    for (const ElfSymbol& s : elf_.symbols())
      if (s.name == mv.name && sec && s.section == sec->index) mv.offset = s.value, mv.size = s.size;
    return mv;
  }

  // parse_btf_map_def: one member at a time; `inner` for the template of a
  // map-in-map's inner maps, which may be neither pinned nor nested.
  Result<MapDef> parse_def(uint32_t struct_id, const std::string& name, bool inner, MapVar* var) {
    MapDef d;
    d.name = name;
    auto members = btf_.members(struct_id);
    for (size_t i = 0; i < members.size(); ++i) {
      const BtfMember& m = members[i];
      if (m.name == "values") {
        if (inner) return err(name, "multi-level inner maps are not supported");
        if (i + 1 != members.size()) return err(name, "'values' must be the last member");
        if (auto st = parse_values(d, m); !st) return st.error();
        if (var) var->has_values = true, var->values_offset = m.bit_offset / 8;
        continue;
      }
      if (auto st = parse_member(d, m); !st) return st.error();
    }
    if (inner && d.pinning != MapPinning::None) return err(name, "inner map definition can't be pinned");
    if (auto st = validate_def(elf_.name(), d); !st) return st.error();
    return d;
  }

  Status parse_member(MapDef& d, const BtfMember& m) {
    auto set_int = [&](auto& field) -> Status {
      auto v = int_attr(d.name, m);
      if (!v) return v.error();
      field = *v;
      return ok_status();
    };
    std::string_view n = m.name;
    if (n == "type") return set_int(d.type);
    if (n == "max_entries") return set_int(d.max_entries);
    if (n == "map_flags") return set_int(d.map_flags);
    if (n == "numa_node") return set_int(d.numa_node);
    if (n == "map_extra") return set_int(d.map_extra);
    if (n == "key_size") return set_size(d, d.key_size, "key", int_attr(d.name, m));
    if (n == "value_size") return set_size(d, d.value_size, "value", int_attr(d.name, m));
    if (n == "key" || n == "value") return set_type(d, m, n == "key");
    if (n == "pinning") {
      auto v = int_attr(d.name, m);
      if (!v) return v.error();
      if (*v > 1) return err(d.name, "unsupported pinning ", *v);
      d.pinning = static_cast<MapPinning>(*v);
      return ok_status();
    }
    if (opts_.strict) return err(d.name, "unknown field '", n, "'");
    return ok_status();  // libbpf in relaxed mode: warn and skip
  }

  // An integer attribute: `int (*name)[N]` is N.
  Result<uint32_t> int_attr(std::string_view map, const BtfMember& m) const {
    uint32_t ptr = btf_.resolve(m.type);
    if (btf_.kind(ptr) != BtfKind::Ptr)
      return err(map, "attribute '", m.name, "': expected a pointer, got ", btf_.to_string(m.type));
    uint32_t arr = btf_.resolve(btf_.type(ptr)->type);
    if (btf_.kind(arr) != BtfKind::Array)
      return err(map, "attribute '", m.name, "': expected a pointer to an array, got ",
                 btf_.to_string(m.type));
    return btf_.type(arr)->array_nelems;
  }

  // key_size given twice, or as a size and as a type, must agree.
  Status set_size(MapDef& d, uint32_t& field, const char* what, Result<uint32_t> size) const {
    if (!size) return size.error();
    if (field != 0 && field != *size)
      return err(d.name, "conflicting ", what, " size ", field, " != ", *size);
    field = *size;
    return ok_status();
  }

  Status set_type(MapDef& d, const BtfMember& m, bool key) const {
    uint32_t ptr = btf_.resolve(m.type);
    if (btf_.kind(ptr) != BtfKind::Ptr) return err(d.name, "'", m.name, "' must be a pointer to its type");
    uint32_t type = btf_.type(ptr)->type;
    auto size = btf_.size_of(type);
    if (!size) return err(d.name, "'", m.name, "' type: ", size.error().message);
    if (*size > UINT32_MAX) return err(d.name, "'", m.name, "' type too large");
    if (auto st = set_size(d, key ? d.key_size : d.value_size, key ? "key" : "value", uint32_t(*size)); !st)
      return st;
    (key ? d.btf_key_type_id : d.btf_value_type_id) = type;
    return ok_status();
  }

  // `values`: a zero-length array of pointers, to functions for a prog
  // array, to an inner map definition for a map of maps. Its elements are
  // 4-byte fds to the kernel, so the value size is 4.
  Status parse_values(MapDef& d, const BtfMember& m) {
    uint32_t arr = btf_.resolve(m.type);
    if (btf_.kind(arr) != BtfKind::Array || btf_.type(arr)->array_nelems != 0)
      return err(d.name, "'values' must be a zero-length array");
    uint32_t ptr = btf_.resolve(btf_.type(arr)->array_elem);
    if (btf_.kind(ptr) != BtfKind::Ptr) return err(d.name, "'values' must be an array of pointers");
    uint32_t target = btf_.resolve(btf_.type(ptr)->type);
    if (is_map_in_map(d.type)) {
      if (btf_.kind(target) != BtfKind::Struct) return err(d.name, "inner map definition is not a struct");
      auto inner = parse_def(target, d.name + ".inner", true, nullptr);
      if (!inner) return inner.error();
      inner->section = ".maps";
      d.inner = std::make_shared<MapDef>(std::move(*inner));
    } else if (d.type == kProgArray) {
      if (btf_.kind(target) != BtfKind::FuncProto)
        return err(d.name, "prog array 'values' must point to functions");
    } else {
      return err(d.name, "'values' needs a prog array or a map of maps (type is ", d.type, ")");
    }
    if (d.value_size != 0 && d.value_size != 4)
      return err(d.name, "conflicting value size ", d.value_size, " != 4");
    d.value_size = 4;
    return ok_status();
  }

  // `.rel.maps`: each R_BPF_64_64 against a program or a map fills one slot
  // of the `values` array of the variable it lies in.
  Status collect_slots(const ElfSection& sec, const std::vector<MapVar>& vars, std::span<MapDef> defs) const {
    auto relocs = elf_.relocations_for(sec.index);
    if (!relocs) return relocs.error();
    const ElfSection* maps = elf_.section(".maps");
    for (const ElfReloc& r : *relocs) {
      auto it = std::find_if(vars.begin(), vars.end(), [&](const MapVar& v) {
        return r.offset >= v.offset && r.offset - v.offset < v.size;
      });
      if (it == vars.end())
        return fail(elf_.name(), ": .rel.maps: relocation at ", r.offset, " is in no map");
      MapDef& d = defs[it - vars.begin()];
      uint64_t at = r.offset - it->offset;
      if (!it->has_values || at < it->values_offset || (at - it->values_offset) % 8 != 0)
        return err(d.name, "relocation at ", r.offset, " is not a 'values' slot");
      uint64_t slot = (at - it->values_offset) / 8;
      if (slot >= d.max_entries)
        return err(d.name, "'values' slot ", slot, " beyond max_entries ", d.max_entries);
      const ElfSymbol& sym = elf_.symbols()[r.symbol];  // in range: ElfFile checks
      bool is_map = maps && sym.section == maps->index;
      if (d.type == kProgArray ? sym.type != kSttFunc : !is_map)
        return err(d.name, "slot ", slot, " names '", sym.name, "', not a ",
                   d.type == kProgArray ? "program" : "map");
      d.init_slots.push_back({static_cast<uint32_t>(slot), sym.name});
    }
    return ok_status();
  }

  const ElfFile& elf_;
  const Btf& btf_;
  MapDefOptions opts_;
};

// Legacy `maps`: struct bpf_map_def { u32 type, key_size, value_size,
// max_entries, map_flags; } at each symbol; a larger symbol may carry
// fields a newer loader knew, which must then be zero (libbpf:
// "maps section has unrecognized, non-zero options").
Status parse_legacy_maps(const ElfFile& elf, const ElfSection& sec, std::vector<MapDef>& out) {
  for (const ElfSymbol& s : elf.symbols()) {
    if (s.section != sec.index || s.name.empty() || s.name == sec.name) continue;
    uint64_t size = s.size ? s.size : kLegacyDefSize;
    auto e = [&](auto&&... parts) -> Status { return fail(elf.name(), ": map '", s.name, "': ", parts...); };
    if (s.value > sec.data.size() || size > sec.data.size() - s.value)
      return e("definition at ", s.value, " (", size, " bytes) outside section 'maps'");
    auto bytes = sec.data.subspan(s.value, size);
    uint32_t f[5] = {};
    for (size_t i = 0; i < 5 * 4 && i < bytes.size(); ++i) f[i / 4] |= uint32_t{bytes[i]} << (8 * (i % 4));
    for (size_t i = kLegacyDefSize; i < bytes.size(); ++i)
      if (bytes[i] != 0) return e("unrecognized non-zero option at byte ", i, " of its definition");
    MapDef d;
    d.name = s.name, d.section = "maps";
    d.type = f[0], d.key_size = f[1], d.value_size = f[2], d.max_entries = f[3], d.map_flags = f[4];
    if (auto st = validate_def(elf.name(), d); !st) return st;
    out.push_back(std::move(d));
  }
  return ok_status();
}

}  // namespace

Result<std::vector<MapDef>> parse_map_definitions(const ElfFile& elf, const Btf* btf, MapDefOptions options) {
  std::vector<MapDef> out;
  if (const ElfSection* sec = elf.section(".maps")) {
    if (!btf) return fail(elf.name(), ": .maps: BTF-defined maps need the object's .BTF");
    if (auto st = BtfMapParser(elf, *btf, options).run(*sec, out); !st) return st.error();
  }
  if (const ElfSection* sec = elf.section("maps"))
    if (auto st = parse_legacy_maps(elf, *sec, out); !st) return st.error();
  return out;
}

}  // namespace ember
