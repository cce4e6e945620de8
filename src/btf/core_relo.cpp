// CO-RE: relocating field offsets, sizes, type and enum facts that the
// compiler computed against the object's own BTF to what a target BTF says.
// The rules are libbpf's (relo_core.c), in the same three steps:
//   1. parse the access string "0:1:2" into a spec over the local type:
//      every step an array index or a member, with the bit offset reached;
//   2. find target candidates (same kind, same name without "___flavor")
//      and match the spec against each, by member names, recursing into
//      anonymous members; all matches must agree;
//   3. compute the value the instruction held and the value it must hold,
//      then patch the instruction, or poison it if there is no match.
#include <algorithm>
#include <charconv>
#include <map>
#include <optional>

#include "ember/btf.hpp"

namespace ember {
namespace {

constexpr size_t kMaxSpecLen = 64;  // BPF_CORE_SPEC_MAX_LEN
constexpr int kMaxCompatDepth = 32;

bool is_field_kind(CoreReloKind k) { return k <= CoreReloKind::FieldRshiftU64; }
bool is_enumval_kind(CoreReloKind k) {
  return k == CoreReloKind::EnumvalExists || k == CoreReloKind::EnumvalValue;
}
bool is_composite(BtfKind k) { return k == BtfKind::Struct || k == BtfKind::Union; }
bool is_enum(BtfKind k) { return k == BtfKind::Enum || k == BtfKind::Enum64; }

// Kinds that may stand for each other across BTFs (libbpf's btf_kind_core_compat).
bool kinds_compat(BtfKind a, BtfKind b) { return a == b || (is_enum(a) && is_enum(b)); }

// One high-level step of a spec: an array index (name empty), a named
// member, or for enum relocations the enumerator.
struct Accessor {
  uint32_t type_id = 0;
  uint32_t idx = 0;
  std::string_view name;
};

struct Spec {
  const Btf* btf = nullptr;
  uint32_t root_id = 0;
  std::vector<Accessor> acc;
  std::vector<uint32_t> raw;  // every step, anonymous members included
  uint64_t bit_offset = 0;
};

Result<std::vector<uint32_t>> parse_access(std::string_view s) {
  std::vector<uint32_t> out;
  if (s.empty() || s[0] == ':') return fail("malformed access string '", s, "'");
  for (size_t pos = 0; pos < s.size();) {
    if (s[pos] == ':') ++pos;
    uint32_t v = 0;
    auto [end, ec] = std::from_chars(s.data() + pos, s.data() + s.size(), v);
    if (ec != std::errc() || out.size() == kMaxSpecLen) return fail("malformed access string '", s, "'");
    out.push_back(v);
    pos = static_cast<size_t>(end - s.data());
  }
  return out;
}

// A flexible array: the zero-length last member of a struct.
bool is_flex(const Btf& btf, const Accessor* parent, const BtfType& arr) {
  if (!parent || parent->name.empty() || arr.array_nelems > 0) return false;
  return parent->idx + 1 == btf.type(parent->type_id)->vlen;
}

// Step 1: the spec of the local side (libbpf's bpf_core_parse_spec).
Result<Spec> parse_spec(const Btf& btf, const BtfCoreRelo& relo) {
  Spec spec;
  spec.btf = &btf;
  spec.root_id = relo.type_id;
  auto raw = parse_access(relo.access);
  if (!raw) return raw.error();
  spec.raw = *raw;
  bool type_based = !is_field_kind(relo.kind) && !is_enumval_kind(relo.kind);
  if (type_based) {
    if (relo.access != "0") return fail("type relocation with access '", relo.access, "' (want '0')");
    return spec;
  }
  uint32_t id = btf.resolve(relo.type_id);
  spec.acc.push_back({id, spec.raw[0], {}});
  if (is_enumval_kind(relo.kind)) {
    auto values = btf.enum_values(id);
    if (spec.raw.size() != 1 || spec.raw[0] >= values.size())
      return fail("not an enumerator of ", btf.describe(id));
    spec.acc[0].name = values[spec.raw[0]].name;
    return spec;
  }
  auto size = btf.size_of(id);
  if (!size) return size.error();
  spec.bit_offset = uint64_t{spec.raw[0]} * *size * 8;
  for (size_t i = 1; i < spec.raw.size(); ++i) {
    const BtfType& t = *btf.type(id = btf.resolve(id));
    uint32_t idx = spec.raw[i];
    if (is_composite(t.kind)) {
      auto members = btf.members(id);
      if (idx >= members.size()) return fail("member ", idx, " of ", btf.describe(id), " out of range");
      spec.bit_offset += members[idx].bit_offset;
      if (!members[idx].name.empty()) spec.acc.push_back({id, idx, members[idx].name});
      id = members[idx].type;
    } else if (t.kind == BtfKind::Array) {
      id = btf.resolve(t.array_elem);
      if (!is_flex(btf, &spec.acc.back(), t) && idx >= t.array_nelems)
        return fail("index ", idx, " beyond ", btf.describe(id), "[", t.array_nelems, "]");
      spec.acc.push_back({id, idx, {}});
      auto elem = btf.size_of(id);
      if (!elem) return elem.error();
      spec.bit_offset += uint64_t{idx} * *elem * 8;
    } else {
      return fail("access step ", i, " reaches ", btf.describe(id), ", neither a struct, union nor array");
    }
  }
  return spec;
}

// Field types that can relocate into each other (bpf_core_fields_are_compat).
bool fields_compat(const Btf& lb, uint32_t lid, const Btf& tb, uint32_t tid) {
  for (int depth = 0; depth < kMaxCompatDepth; ++depth) {
    const BtfType& l = *lb.type(lid = lb.resolve(lid));
    const BtfType& t = *tb.type(tid = tb.resolve(tid));
    if (is_composite(l.kind) && is_composite(t.kind)) return true;
    if (!kinds_compat(l.kind, t.kind)) return false;
    switch (l.kind) {
      case BtfKind::Ptr:
      case BtfKind::Float: return true;
      case BtfKind::Fwd:
      case BtfKind::Enum:
      case BtfKind::Enum64:  // anonymous, or the same name without flavors
        return l.name.empty() || t.name.empty() || btf_essential_name(l.name) == btf_essential_name(t.name);
      case BtfKind::Int: return l.int_offset == 0 && t.int_offset == 0;  // old-style bitfield ints never
      case BtfKind::Array: lid = l.array_elem, tid = t.array_elem; break;
      default: return false;
    }
  }
  return false;
}

// Whole types for type-based relocations (bpf_core_types_are_compat):
// names matched already; shapes must agree through pointers, arrays and
// function prototypes.
bool types_compat(const Btf& lb, uint32_t lid, const Btf& tb, uint32_t tid, int depth = 0) {
  if (depth > kMaxCompatDepth) return false;
  const BtfType& l = *lb.type(lid = lb.resolve(lid));
  const BtfType& t = *tb.type(tid = tb.resolve(tid));
  if (!kinds_compat(l.kind, t.kind)) return false;
  switch (l.kind) {
    case BtfKind::Void:
    case BtfKind::Struct:
    case BtfKind::Union:
    case BtfKind::Enum:
    case BtfKind::Enum64:
    case BtfKind::Fwd: return true;
    case BtfKind::Int: return l.int_offset == 0 && t.int_offset == 0;
    case BtfKind::Ptr: return types_compat(lb, l.type, tb, t.type, depth + 1);
    case BtfKind::Array: return types_compat(lb, l.array_elem, tb, t.array_elem, depth + 1);
    case BtfKind::FuncProto: {
      auto lp = lb.params(lid), tp = tb.params(tid);
      if (lp.size() != tp.size()) return false;
      for (size_t i = 0; i < lp.size(); ++i)
        if (!types_compat(lb, lp[i].type, tb, tp[i].type, depth + 1)) return false;
      return types_compat(lb, l.type, tb, t.type, depth + 1);
    }
    default: return false;
  }
}

// Names for TYPE_MATCHES: an anonymous target matches only an anonymous
// local; otherwise the names without flavors agree.
bool names_match(std::string_view local, std::string_view target) {
  if (target.empty()) return local.empty();
  return btf_essential_name(local) == btf_essential_name(target);
}

bool types_match(const Btf& lb, uint32_t lid, const Btf& tb, uint32_t tid, bool behind_ptr, int level);

// Every local enumerator has a namesake in the target (values may differ).
bool enums_match(const Btf& lb, uint32_t lid, const Btf& tb, uint32_t tid) {
  if (lb.type(lid)->size != tb.type(tid)->size) return false;
  auto tv = tb.enum_values(tid);
  for (const BtfEnumValue& l : lb.enum_values(lid))
    if (std::none_of(tv.begin(), tv.end(),
                     [&](const BtfEnumValue& t) { return names_match(l.name, t.name); }))
      return false;
  return true;
}

// Every local member has a namesake in the target whose type matches.
bool composites_match(const Btf& lb, uint32_t lid, const Btf& tb, uint32_t tid, int level) {
  auto tm = tb.members(tid);
  for (const BtfMember& l : lb.members(lid)) {
    auto same = [&](const BtfMember& t) {
      return names_match(l.name, t.name) && types_match(lb, l.type, tb, t.type, false, level - 1);
    };
    if (std::none_of(tm.begin(), tm.end(), same)) return false;
  }
  return true;
}

// TYPE_MATCHES (libbpf's __bpf_core_types_match): stricter than the
// compatibility of TYPE_EXISTS. Integers agree in size and signedness,
// arrays in length, prototypes in arity; structs and unions have every local
// member, except behind a pointer, where a name (or a FWD of the right
// kind) is enough.
bool types_match(const Btf& lb, uint32_t lid, const Btf& tb, uint32_t tid, bool behind_ptr, int level) {
  if (level <= 0) return false;
  for (int depth = 0; depth < kMaxCompatDepth; ++depth) {
    const BtfType& l = *lb.type(lid = lb.resolve(lid));
    const BtfType& t = *tb.type(tid = tb.resolve(tid));
    if (!names_match(l.name, t.name)) return false;
    bool same = l.kind == t.kind;
    switch (l.kind) {
      case BtfKind::Void: return same;
      case BtfKind::Fwd:
        if (same) return l.kflag == t.kflag;  // kflag: a union
        return behind_ptr && (t.kind == (l.kflag ? BtfKind::Union : BtfKind::Struct));
      case BtfKind::Enum:
      case BtfKind::Enum64: return is_enum(t.kind) && enums_match(lb, lid, tb, tid);
      case BtfKind::Struct:
      case BtfKind::Union:
        if (behind_ptr) return same || (t.kind == BtfKind::Fwd && t.kflag == (l.kind == BtfKind::Union));
        return same && composites_match(lb, lid, tb, tid, level);
      case BtfKind::Int:
        return same && l.size == t.size &&
               (l.int_encoding & btf_int::kSigned) == (t.int_encoding & btf_int::kSigned);
      case BtfKind::Ptr:
        if (!same) return false;
        behind_ptr = true, lid = l.type, tid = t.type;
        break;
      case BtfKind::Array:
        if (!same || l.array_nelems != t.array_nelems) return false;
        lid = l.array_elem, tid = t.array_elem;
        break;
      case BtfKind::FuncProto: {
        auto lp = lb.params(lid), tp = tb.params(tid);
        if (!same || lp.size() != tp.size()) return false;
        for (size_t i = 0; i < lp.size(); ++i)
          if (!types_match(lb, lp[i].type, tb, tp[i].type, behind_ptr, level - 1)) return false;
        lid = l.type, tid = t.type;
        break;
      }
      default: return false;
    }
  }
  return false;
}

// Finds the target member named like local accessor `la`, descending into
// anonymous members; extends `ts` with the steps taken (bpf_core_match_member).
bool match_member(const Spec& local, const Accessor& la, const Btf& tb, uint32_t tid, Spec& ts,
                  uint32_t& next, int depth = 0) {
  tid = tb.resolve(tid);
  if (!is_composite(tb.kind(tid)) || depth > kMaxCompatDepth || ts.raw.size() >= kMaxSpecLen) return false;
  const BtfMember& lm = local.btf->members(la.type_id)[la.idx];
  auto members = tb.members(tid);
  for (uint32_t i = 0; i < members.size(); ++i) {
    const BtfMember& m = members[i];
    ts.bit_offset += m.bit_offset;
    ts.raw.push_back(i);
    if (m.name.empty()) {
      if (match_member(local, la, tb, m.type, ts, next, depth + 1)) return true;
    } else if (m.name == lm.name) {
      if (!fields_compat(*local.btf, lm.type, tb, m.type)) return false;
      ts.acc.push_back({tid, i, m.name});
      next = m.type;
      return true;
    }
    ts.bit_offset -= m.bit_offset;
    ts.raw.pop_back();
  }
  return false;
}

// Step 2 for field relocations: the local spec replayed on candidate `tid`.
bool match_field_spec(const Spec& local, const Btf& tb, uint32_t tid, Spec& ts) {
  for (size_t i = 0; i < local.acc.size(); ++i) {
    const Accessor& la = local.acc[i];
    tid = tb.resolve(tid);
    if (!la.name.empty()) {
      if (!match_member(local, la, tb, tid, ts, tid)) return false;
      continue;
    }
    if (i > 0) {  // the first index is through the root pointer: no array type
      const BtfType& arr = *tb.type(tid);
      if (arr.kind != BtfKind::Array) return false;
      if (!is_flex(tb, &ts.acc.back(), arr) && la.idx >= arr.array_nelems) return false;
      tid = tb.resolve(arr.array_elem);
    }
    auto size = tb.size_of(tid);
    if (!size || ts.raw.size() >= kMaxSpecLen) return false;
    ts.acc.push_back({tid, la.idx, {}});
    ts.raw.push_back(la.idx);
    ts.bit_offset += uint64_t{la.idx} * *size * 8;
  }
  return true;
}

// Step 2 for enumerators: an enumerator of the same essential name.
bool match_enum_spec(const Spec& local, const Btf& tb, uint32_t tid, Spec& ts) {
  tid = tb.resolve(tid);
  auto values = tb.enum_values(tid);
  std::string_view want = btf_essential_name(local.acc[0].name);
  for (uint32_t i = 0; i < values.size(); ++i) {
    if (btf_essential_name(values[i].name) != want) continue;
    ts.acc.push_back({tid, i, values[i].name});
    ts.raw.push_back(i);
    return true;
  }
  return false;
}

bool match_spec(const Spec& local, CoreReloKind kind, const Btf& tb, uint32_t tid, Spec& ts) {
  ts = Spec{&tb, tid, {}, {}, 0};
  if (is_field_kind(kind)) return match_field_spec(local, tb, tid, ts);
  if (is_enumval_kind(kind)) return match_enum_spec(local, tb, tid, ts);
  if (kind == CoreReloKind::TypeMatches)
    return types_match(*local.btf, local.root_id, tb, tid, false, kMaxCompatDepth);
  return types_compat(*local.btf, local.root_id, tb, tid);
}

// Step 3: what a relocation evaluates to on one side.
struct Value {
  uint64_t value = 0;
  uint32_t field_size = 0;  // byte_off of a non-bitfield: for load/store resizing
  uint32_t field_type = 0;
  bool validate = true;
  bool poison = false;
};

Result<Value> field_value(CoreReloKind kind, const Spec* spec) {
  Value v;
  if (kind == CoreReloKind::FieldExists) {
    v.value = spec ? 1 : 0;
    return v;
  }
  if (!spec) return Value{.poison = true};
  const Btf& btf = *spec->btf;
  const Accessor& acc = spec->acc.back();
  if (acc.name.empty()) {  // the last step is an array element
    auto size = btf.size_of(acc.type_id);
    if (!size) return size.error();
    if (kind == CoreReloKind::FieldByteOffset)
      return Value{spec->bit_offset / 8, uint32_t(*size), acc.type_id};
    if (kind == CoreReloKind::FieldByteSize) return Value{*size};
    return fail(core_relo_kind_name(kind), " can't be applied to an array element");
  }
  const BtfMember& m = btf.members(acc.type_id)[acc.idx];
  uint32_t ftype = btf.resolve(m.type);
  const BtfType& mt = *btf.type(ftype);
  uint64_t bit_off = spec->bit_offset, bit_sz = m.bitfield_size, byte_sz = 0, byte_off = 0;
  bool bitfield = bit_sz > 0;
  if (bitfield) {
    // The smallest aligned load of the field's type size (or larger) that
    // covers all its bits.
    byte_sz = mt.size;
    if (byte_sz == 0) return fail("bitfield '", m.name, "' of unsized type");
    for (byte_off = bit_off / 8 / byte_sz * byte_sz; bit_off + bit_sz - byte_off * 8 > byte_sz * 8;
         byte_off = bit_off / 8 / byte_sz * byte_sz) {
      if (byte_sz >= 8) return fail("bitfield '", m.name, "' can't be read with a 64-bit load");
      byte_sz *= 2;
    }
  } else {
    auto size = btf.size_of(ftype);
    if (!size) return size.error();
    byte_sz = *size, byte_off = bit_off / 8, bit_sz = byte_sz * 8;
  }
  v.validate = !bitfield;  // compilers may pick other loads for bitfields
  switch (kind) {
    case CoreReloKind::FieldByteOffset:
      v.value = byte_off;
      if (!bitfield) v.field_size = static_cast<uint32_t>(byte_sz), v.field_type = ftype;
      break;
    case CoreReloKind::FieldByteSize: v.value = byte_sz; break;
    case CoreReloKind::FieldSigned:
      v.value =
          (is_enum(mt.kind) && mt.kflag) || (mt.kind == BtfKind::Int && (mt.int_encoding & btf_int::kSigned));
      v.validate = true;
      break;
    case CoreReloKind::FieldLshiftU64:
      v.value = 64 - (bit_off + bit_sz - byte_off * 8);
      break;  // little-endian
    case CoreReloKind::FieldRshiftU64:
      v.value = 64 - bit_sz;
      v.validate = true;
      break;
    default: return fail("not a field relocation");
  }
  return v;
}

Result<Value> type_value(CoreReloKind kind, const Spec* spec) {
  if (!spec) return Value{};  // a type that does not exist: 0 for every question
  switch (kind) {
    case CoreReloKind::TypeIdTarget:
      return Value{.value = spec->root_id, .validate = false};  // ids move at link
    case CoreReloKind::TypeExists:
    case CoreReloKind::TypeMatches: return Value{1};
    case CoreReloKind::TypeSize: {
      auto size = spec->btf->size_of(spec->root_id);
      if (!size) return size.error();
      return Value{*size};
    }
    default: return fail("unsupported type relocation");
  }
}

Result<Value> enum_value(CoreReloKind kind, const Spec* spec) {
  if (kind == CoreReloKind::EnumvalExists) return Value{spec ? 1u : 0u};
  if (!spec) return Value{.poison = true};
  return Value{static_cast<uint64_t>(spec->btf->enum_values(spec->acc[0].type_id)[spec->acc[0].idx].value)};
}

Result<Value> relo_value(CoreReloKind kind, const Spec* spec) {
  if (is_field_kind(kind)) return field_value(kind, spec);
  if (is_enumval_kind(kind)) return enum_value(kind, spec);
  return type_value(kind, spec);
}

// Loads and stores may change size only where zero extension keeps the
// value: pointers, and unsigned integers (libbpf's fail_memsz_adjust).
bool resizable(const Btf& lb, uint32_t lt, const Btf& tb, uint32_t tt) {
  const BtfType& l = *lb.type(lt);
  const BtfType& t = *tb.type(tt);
  if (l.kind == BtfKind::Ptr && t.kind == BtfKind::Ptr) return true;
  return l.kind == BtfKind::Int && t.kind == BtfKind::Int && l.int_encoding != btf_int::kSigned &&
         t.int_encoding != btf_int::kSigned;
}

class CoreResolver {
 public:
  CoreResolver(const Btf& local, const Btf& target, const std::string& what)
      : local_(local), target_(target), what_(what) {}

  Result<CorePatch> resolve(const std::string& section, const BtfCoreRelo& relo) {
    CorePatch p{section, relo.insn_off / 8, relo.kind, relo.type_id, relo.access};
    auto st = fill(relo, p);
    if (!st)
      return fail(what_, ": section '", section, "' insn ", p.insn, ": CO-RE ",
                  core_relo_kind_name(relo.kind), " of ", local_.to_string(relo.type_id), " (access ",
                  relo.access, "): ", st.error().message);
    return p;
  }

 private:
  Status fill(const BtfCoreRelo& relo, CorePatch& p) {
    auto local = parse_spec(local_, relo);
    if (!local) return local.error();
    if (relo.kind == CoreReloKind::TypeIdLocal) {  // the object's own id: no target involved
      p.new_value = p.orig_value = relo.type_id;
      p.validate = false;  // ids may be renumbered when objects are linked (as libbpf)
      return ok_status();
    }
    auto orig = relo_value(relo.kind, &*local);
    if (!orig) return orig.error();
    p.orig_value = orig->value, p.validate = orig->validate, p.orig_size = orig->field_size;
    std::string_view name = local_.name(relo.type_id);
    if (name.empty()) return fail("relocations against anonymous types are not supported");
    std::optional<Spec> best;
    std::optional<Value> best_value;
    for (uint32_t cand : candidates(relo.type_id)) {
      Spec ts;
      if (!match_spec(*local, relo.kind, target_, cand, ts)) continue;
      auto v = relo_value(relo.kind, &ts);
      if (!v) return fail("candidate ", target_.describe(cand), ": ", v.error().message);
      if (best && (best->bit_offset != ts.bit_offset || best_value->poison != v->poison ||
                   (!v->poison && best_value->value != v->value)))
        return fail("ambiguous: candidates ", target_.describe(best->root_id), " and ",
                    target_.describe(cand), " disagree");
      if (!best) best = ts, best_value = *v;
    }
    if (!best) {  // nothing matched: what the kind says about absence
      auto v = relo_value(relo.kind, nullptr);
      if (!v) return v.error();
      best_value = *v;
    }
    p.target_type_id = best ? best->root_id : 0;
    p.new_value = best_value->value, p.poison = best_value->poison, p.new_size = best_value->field_size;
    // Reading the field at another size would give a wrong value: such a
    // load or store is poisoned when patched.
    p.resize_unsafe = p.orig_size != p.new_size && best &&
                      !resizable(local_, orig->field_type, target_, best_value->field_type);
    return ok_status();
  }

  // Target types of the same kind named like the local one, flavors aside
  // (libbpf's bpf_core_find_cands), cached per local type.
  const std::vector<uint32_t>& candidates(uint32_t local_id) {
    auto [it, fresh] = cands_.try_emplace(local_id);
    if (!fresh) return it->second;
    const BtfType& lt = *local_.type(local_id);
    for (uint32_t id : target_.find_by_essential_name(btf_essential_name(lt.name)))
      if (kinds_compat(target_.kind(id), lt.kind)) it->second.push_back(id);
    return it->second;
  }

  const Btf& local_;
  const Btf& target_;
  const std::string& what_;
  std::map<uint32_t, std::vector<uint32_t>> cands_;
};

}  // namespace

Result<CorePatch> resolve_core_relocation(const Btf& local, const std::string& section,
                                          const BtfCoreRelo& relo, const Btf& target,
                                          const std::string& what) {
  if (relo.type_id == 0 || relo.type_id >= local.count())
    return fail(what, ": section '", section, "': CO-RE type id ", relo.type_id, " out of range");
  return CoreResolver(local, target, what).resolve(section, relo);
}

Result<std::vector<CorePatch>> resolve_core_relocations(const Btf& local, const BtfExt& ext,
                                                        const Btf& target, const std::string& what) {
  CoreResolver resolver(local, target, what);
  std::vector<CorePatch> out;
  for (const auto& sec : ext.core_relos()) {
    for (const BtfCoreRelo& relo : sec.records) {
      if (relo.type_id >= local.count())
        return fail(what, ": section '", sec.name, "': CO-RE type id ", relo.type_id, " out of range");
      auto p = resolver.resolve(sec.name, relo);
      if (!p) return p.error();
      out.push_back(std::move(*p));
    }
  }
  return out;
}

namespace {

constexpr uint8_t kClassLd = 0x00, kClassLdx = 0x01, kClassSt = 0x02, kClassStx = 0x03, kClassAlu = 0x04,
                  kClassAlu64 = 0x07;
constexpr uint8_t kLdImm64 = 0x18, kCall = 0x85, kSrcX = 0x08;

// BPF_SIZE bits of a load or store <-> bytes.
int size_bytes(uint8_t opcode) {
  static constexpr int bytes[] = {4, 2, 1, 8};  // BPF_W, BPF_H, BPF_B, BPF_DW
  return bytes[(opcode >> 3) & 3];
}
uint8_t with_size(uint8_t opcode, uint32_t bytes) {
  uint8_t bits = bytes == 4 ? 0x00 : bytes == 2 ? 0x08 : bytes == 1 ? 0x10 : 0x18;
  return static_cast<uint8_t>((opcode & ~0x18) | bits);
}

void poison(RawInsn& insn) {
  insn = RawInsn{};
  insn.opcode = kCall;
  insn.imm = kCorePoisonHelper;
}

Status patch_mem(RawInsn& insn, const CorePatch& p) {
  if (p.validate && insn.off != static_cast<int64_t>(p.orig_value))
    return fail("offset ", insn.off, " is not the expected ", p.orig_value);
  if (p.new_value > INT16_MAX) return fail("offset ", p.new_value, " does not fit an instruction");
  if (p.resize_unsafe) {
    poison(insn);
    return ok_status();
  }
  insn.off = static_cast<int16_t>(p.new_value);
  if (p.new_size == p.orig_size || p.new_size == 0) return ok_status();
  if (size_bytes(insn.opcode) != static_cast<int>(p.orig_size))
    return fail("accesses ", size_bytes(insn.opcode), " bytes of a ", p.orig_size, "-byte field");
  if (p.new_size != 1 && p.new_size != 2 && p.new_size != 4 && p.new_size != 8)
    return fail("field of ", p.new_size, " bytes can't be loaded in one instruction");
  insn.opcode = with_size(insn.opcode, p.new_size);
  return ok_status();
}

// One patch (libbpf's bpf_core_patch_insn): ALU immediates, load/store
// offsets, ld_imm64 values; the value there must be what the compiler
// computed against the local BTF.
Status patch_insn(std::vector<RawInsn>& insns, const CorePatch& p) {
  if (p.insn >= insns.size()) return fail("no such instruction (section has ", insns.size(), ")");
  RawInsn& insn = insns[p.insn];
  bool wide = insn.opcode == kLdImm64;
  if (wide && p.insn + 1 >= insns.size()) return fail("ld_imm64 without its second half");
  if (p.poison) {
    if (wide) poison(insns[p.insn + 1]);  // no stray "unknown opcode 00" after it
    poison(insn);
    return ok_status();
  }
  uint8_t cls = insn.opcode & 7;
  if (cls == kClassAlu || cls == kClassAlu64) {
    if (insn.opcode & kSrcX) return fail("ALU instruction with a register source");
    if (p.validate && static_cast<uint32_t>(insn.imm) != p.orig_value)
      return fail("immediate ", insn.imm, " is not the expected ", p.orig_value);
    if (p.new_value > UINT32_MAX) return fail("value ", p.new_value, " does not fit 32 bits");
    insn.imm = static_cast<int32_t>(p.new_value);
    return ok_status();
  }
  if (cls == kClassLdx || cls == kClassSt || cls == kClassStx) return patch_mem(insn, p);
  if (wide && cls == kClassLd) {
    uint64_t have = static_cast<uint32_t>(insn.imm) | uint64_t{static_cast<uint32_t>(insns[p.insn + 1].imm)}
                                                          << 32;
    if (p.validate && have != p.orig_value)
      return fail("value ", have, " is not the expected ", p.orig_value);
    insn.imm = static_cast<int32_t>(p.new_value);
    insns[p.insn + 1].imm = static_cast<int32_t>(p.new_value >> 32);
    return ok_status();
  }
  return fail("opcode ", static_cast<int>(insn.opcode), " can't be relocated");
}

}  // namespace

Status apply_core_patches(std::string_view section, std::vector<RawInsn>& insns,
                          std::span<const CorePatch> patches, const std::string& what) {
  for (const CorePatch& p : patches) {
    if (p.section != section) continue;
    if (auto st = patch_insn(insns, p); !st)
      return fail(what, ": section '", section, "' insn ", p.insn, ": CO-RE ", core_relo_kind_name(p.kind),
                  " (access ", p.access, "): ", st.error().message);
  }
  return ok_status();
}

}  // namespace ember
