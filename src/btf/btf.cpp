// The BTF parser: header, string section and type records of a `.BTF`
// section or of /sys/kernel/btf/vmlinux (Documentation/bpf/btf.rst). The
// checks follow the kernel's own (kernel/bpf/btf.c: btf_parse_hdr,
// btf_check_meta, btf_resolve, the per-kind *_check_meta and *_resolve), so
// what passes here would pass there, except that an object's DATASECs may
// still be unsized: libbpf fills their sizes in before loading.
#include "ember/btf.hpp"

#include <cctype>
#include <fstream>
#include <iterator>

#include "btf/byte_reader.hpp"

namespace ember {
namespace {

using btf_detail::ByteReader;
using btf_detail::fits;
using btf_detail::hex;

constexpr uint16_t kMagic = 0xeb9f;
constexpr uint32_t kHeaderSize = 24;         // sizeof(struct btf_header)
constexpr uint32_t kMaxTypes = 0xfffff;      // BTF_MAX_TYPE
constexpr uint32_t kMaxStrings = 0x1000000;  // BTF_MAX_NAME_OFFSET + 1
// The kernel resolves chains of modifiers, pointers and arrays on a stack
// of MAX_RESOLVE_DEPTH (32) entries and rejects deeper ones; so do we, which
// also bounds every recursion in the queries below.
constexpr int kMaxDepth = 32;

bool is_modifier(BtfKind k) {
  return k == BtfKind::Typedef || k == BtfKind::Volatile || k == BtfKind::Const || k == BtfKind::Restrict ||
         k == BtfKind::TypeTag;
}

// Kinds whose `type` field names the next type of a chain that sizes and
// names are resolved through.
bool follows_type(BtfKind k) { return is_modifier(k) || k == BtfKind::Ptr || k == BtfKind::Var; }

bool one_of(uint32_t v, std::initializer_list<uint32_t> allowed) {
  for (uint32_t a : allowed)
    if (v == a) return true;
  return false;
}

}  // namespace

const char* btf_kind_name(BtfKind kind) {
  static const char* const names[] = {"void",    "int",      "ptr",      "array",      "struct",
                                      "union",   "enum",     "fwd",      "typedef",    "volatile",
                                      "const",   "restrict", "func",     "func_proto", "var",
                                      "datasec", "float",    "decl_tag", "type_tag",   "enum64"};
  auto i = static_cast<size_t>(kind);
  return i < std::size(names) ? names[i] : "unknown";
}

// libbpf's bpf_core_essential_name_len: the flavor starts at the last "___"
// that has a non-'_' character on both sides, e.g. "foo___v2" -> "foo".
std::string_view btf_essential_name(std::string_view name) {
  for (size_t i = name.size() >= 5 ? name.size() - 4 : 0; i-- > 0;) {
    if (name[i] != '_' && name.compare(i + 1, 3, "___") == 0 && name[i + 4] != '_')
      return name.substr(0, i + 1);
  }
  return name;
}

class BtfParser {
 public:
  BtfParser(std::span<const uint8_t> bytes, std::string what) : bytes_(bytes) {
    btf_.what_ = std::move(what);
  }

  Result<Btf> run() {
    if (auto st = header(); !st) return st.error();
    if (auto st = records(); !st) return st.error();
    for (uint32_t id = 1; id < btf_.count(); ++id)
      if (auto st = check_refs(id); !st) return st.error();
    depth_.assign(btf_.count(), -1);
    for (uint32_t id = 1; id < btf_.count(); ++id)
      if (auto st = check_depth(id, 0); !st) return st.error();
    for (uint32_t id = 1; id < btf_.count(); ++id)
      if (auto st = check_layout(id); !st) return st.error();
    index_names();
    return std::move(btf_);
  }

 private:
  template <class... Parts>
  Error err(Parts&&... parts) const {
    return fail(btf_.what_, ": .BTF: ", std::forward<Parts>(parts)...);
  }
  template <class... Parts>
  Error type_err(uint32_t id, Parts&&... parts) const {
    return err("type ", btf_.describe(id), ": ", std::forward<Parts>(parts)...);
  }

  // struct btf_header; the kernel wants sections inside the data, type
  // records 4-aligned, a string section that starts and ends with a NUL.
  Status header() {
    ByteReader r(bytes_);
    uint16_t magic = r.u16();
    uint8_t version = r.u8(), flags = r.u8();
    uint32_t hdr_len = r.u32(), type_off = r.u32(), type_len = r.u32(), str_off = r.u32(), str_len = r.u32();
    if (!r.ok()) return err("header truncated (", bytes_.size(), " bytes, need ", kHeaderSize, ")");
    if (magic != kMagic) return err("bad magic ", hex(magic), " (want 0xeb9f, little-endian BTF)");
    if (version != 1) return err("unsupported version ", version);
    if (flags != 0) return err("unsupported flags ", hex(flags));
    if (hdr_len < kHeaderSize || hdr_len > bytes_.size())
      return err("header length ", hdr_len, " outside [24, ", bytes_.size(), "]");
    for (uint32_t i = kHeaderSize; i < hdr_len; ++i)
      if (bytes_[i] != 0) return err("unknown header field set at byte ", i);
    auto data = bytes_.subspan(hdr_len);
    if (type_off % 4 != 0) return err("type section offset ", type_off, " is not 4-aligned");
    if (!fits(type_off, type_len, data.size()))
      return err("type section [", type_off, ", +", type_len, ") outside the data (", data.size(), " bytes)");
    if (!fits(str_off, str_len, data.size()))
      return err("string section [", str_off, ", +", str_len, ") outside the data (", data.size(), " bytes)");
    if (uint64_t{type_off} < uint64_t{str_off} + str_len && uint64_t{str_off} < uint64_t{type_off} + type_len)
      return err("type and string sections overlap");
    if (str_len == 0 || str_len > kMaxStrings) return err("string section size ", str_len, " out of range");
    types_ = data.subspan(type_off, type_len);
    auto strings = data.subspan(str_off, str_len);
    if (strings.front() != 0 || strings.back() != 0)
      return err("string section must start and end with a NUL byte");
    btf_.strings_ = std::make_shared<const std::string>(strings.begin(), strings.end());
    return ok_status();
  }

  Result<std::string_view> name_at(uint32_t off, uint32_t id) const {
    const std::string& s = *btf_.strings_;
    if (off >= s.size()) return err("type [", id, "]: name offset ", off, " outside the string section");
    return std::string_view(s.c_str() + off);  // the section ends with a NUL
  }

  Status records() {
    btf_.types_.emplace_back();  // id 0: void
    ByteReader r(types_);
    while (r.left() > 0) {
      auto id = btf_.count();
      if (id > kMaxTypes) return err("more than ", kMaxTypes, " types");
      uint64_t at = r.pos();
      if (auto st = record(r, id); !st) return st;
      if (!r.ok()) return err("type [", id, "] at offset ", at, ": record truncated");
    }
    return ok_status();
  }

  // One struct btf_type and what follows it.
  Status record(ByteReader& r, uint32_t id) {
    uint32_t name_off = r.u32(), info = r.u32(), size_type = r.u32();
    if (!r.ok()) return ok_status();  // reported by the caller
    BtfType t;
    uint32_t kind = (info >> 24) & 0x1f;
    if (info & 0x60ff0000) return err("type [", id, "]: unused info bits set (", hex(info), ")");
    if (kind == 0 || kind > static_cast<uint32_t>(BtfKind::Enum64))
      return err("type [", id, "]: unknown kind ", kind);
    t.kind = static_cast<BtfKind>(kind);
    t.kflag = info >> 31;
    t.vlen = static_cast<uint16_t>(info & 0xffff);
    auto name = name_at(name_off, id);
    if (!name) return name.error();
    t.name = *name;
    t.size = t.type = size_type;
    btf_.types_.push_back(t);
    if (auto st = trailer(r, btf_.types_.back()); !st) return st;
    return check_meta(id);
  }

  // The kind-specific data after struct btf_type.
  Status trailer(ByteReader& r, BtfType& t) {
    switch (t.kind) {
      case BtfKind::Int: {
        uint32_t v = r.u32();
        if (v & 0xf000ff00) return err("type [", btf_.count() - 1, "]: unused int bits set (", hex(v), ")");
        t.int_encoding = (v >> 24) & 0x0f, t.int_offset = (v >> 16) & 0xff, t.int_bits = v & 0xff;
        return ok_status();
      }
      case BtfKind::Array:
        t.array_elem = r.u32(), t.array_index = r.u32(), t.array_nelems = r.u32();
        return ok_status();
      case BtfKind::Struct:
      case BtfKind::Union: return read_members(r, t);
      case BtfKind::Enum:
      case BtfKind::Enum64: return read_enum(r, t);
      case BtfKind::FuncProto: return read_params(r, t);
      case BtfKind::Var: t.linkage = r.u32(); return ok_status();
      case BtfKind::Datasec: return read_secinfos(r, t);
      case BtfKind::DeclTag: t.component_idx = static_cast<int32_t>(r.u32()); return ok_status();
      case BtfKind::Func: t.linkage = t.vlen; return ok_status();
      default: return ok_status();
    }
  }

  Status read_members(ByteReader& r, BtfType& t) {
    t.first = static_cast<uint32_t>(btf_.members_.size());
    for (uint32_t i = 0; i < t.vlen && r.ok(); ++i) {
      uint32_t name_off = r.u32(), type = r.u32(), offset = r.u32();
      auto name = name_at(name_off, btf_.count() - 1);
      if (!name) return name.error();
      // kflag: the offset word is bitfield_size << 24 | bit_offset.
      BtfMember m{*name, type, t.kflag ? offset & 0xffffff : offset, t.kflag ? offset >> 24 : 0};
      btf_.members_.push_back(m);
    }
    return ok_status();
  }

  Status read_enum(ByteReader& r, BtfType& t) {
    t.first = static_cast<uint32_t>(btf_.enum_values_.size());
    bool wide = t.kind == BtfKind::Enum64;
    for (uint32_t i = 0; i < t.vlen && r.ok(); ++i) {
      uint32_t name_off = r.u32(), lo = r.u32(), hi = wide ? r.u32() : 0;
      auto name = name_at(name_off, btf_.count() - 1);
      if (!name) return name.error();
      // kflag marks a signed enum; an ENUM's 32-bit value is sign-extended then.
      int64_t v = wide ? static_cast<int64_t>((uint64_t{hi} << 32) | lo)
                       : (t.kflag ? int64_t{static_cast<int32_t>(lo)} : int64_t{lo});
      btf_.enum_values_.push_back({*name, v});
    }
    return ok_status();
  }

  Status read_params(ByteReader& r, BtfType& t) {
    t.first = static_cast<uint32_t>(btf_.params_.size());
    for (uint32_t i = 0; i < t.vlen && r.ok(); ++i) {
      uint32_t name_off = r.u32(), type = r.u32();
      auto name = name_at(name_off, btf_.count() - 1);
      if (!name) return name.error();
      btf_.params_.push_back({*name, type});
    }
    return ok_status();
  }

  Status read_secinfos(ByteReader& r, BtfType& t) {
    t.first = static_cast<uint32_t>(btf_.secinfos_.size());
    for (uint32_t i = 0; i < t.vlen && r.ok(); ++i) {
      uint32_t type = r.u32(), offset = r.u32(), size = r.u32();
      btf_.secinfos_.push_back({type, offset, size});
    }
    return ok_status();
  }

  // What a record must look like on its own (the kernel's *_check_meta):
  // which kinds take a name, a vlen, a kflag, which sizes are possible.
  Status check_meta(uint32_t id) const {
    const BtfType& t = btf_.types_[id];
    bool named = !t.name.empty();
    switch (t.kind) {
      case BtfKind::Int:
        if (!one_of(t.size, {1, 2, 4, 8, 16}))
          return type_err(id, "size ", t.size, " is not 1, 2, 4, 8 or 16");
        if (t.int_bits == 0 || t.int_bits > 128 || t.int_offset + t.int_bits > t.size * 8)
          return type_err(id, "bits ", t.int_bits, " at offset ", t.int_offset, " do not fit in ", t.size,
                          " bytes");
        if (!one_of(t.int_encoding, {0, btf_int::kSigned, btf_int::kChar, btf_int::kBool}))
          return type_err(id, "bad int encoding ", hex(t.int_encoding));
        return no_vlen_kflag(id);
      case BtfKind::Ptr:
      case BtfKind::Volatile:
      case BtfKind::Const:
      case BtfKind::Restrict:
        if (named) return type_err(id, "a ", btf_kind_name(t.kind), " has no name");
        return no_vlen_kflag(id);
      case BtfKind::Array:
        if (named || t.size != 0) return type_err(id, "an array has no name and no size field");
        return no_vlen_kflag(id);
      case BtfKind::Typedef:
      case BtfKind::TypeTag:
      case BtfKind::DeclTag:
        if (!named) return type_err(id, "a ", btf_kind_name(t.kind), " needs a name");
        if (t.vlen != 0) return type_err(id, "vlen must be 0");
        return ok_status();
      case BtfKind::Fwd:
        if (!named) return type_err(id, "a fwd needs a name");
        if (t.vlen != 0) return type_err(id, "vlen must be 0");
        return ok_status();
      case BtfKind::Func:
        if (!named) return type_err(id, "a func needs a name");
        if (t.linkage > 2) return type_err(id, "unknown linkage ", t.linkage);
        return no_kflag(id);
      case BtfKind::FuncProto:
        if (named) return type_err(id, "a func_proto has no name");
        return no_kflag(id);
      case BtfKind::Var:
        if (!named) return type_err(id, "a var needs a name");
        if (t.linkage > 2) return type_err(id, "unknown linkage ", t.linkage);
        return no_vlen_kflag(id);
      case BtfKind::Datasec:
        if (!named) return type_err(id, "a datasec needs a name");
        return no_kflag(id);
      case BtfKind::Float:
        if (!one_of(t.size, {2, 4, 8, 12, 16})) return type_err(id, "float size ", t.size, " unsupported");
        return no_vlen_kflag(id);
      case BtfKind::Enum:
      case BtfKind::Enum64:
        if (!one_of(t.size, {1, 2, 4, 8})) return type_err(id, "enum size ", t.size, " is not 1, 2, 4 or 8");
        return ok_status();
      case BtfKind::Struct:
      case BtfKind::Union:
      case BtfKind::Void: return ok_status();
    }
    return ok_status();
  }
  Status no_kflag(uint32_t id) const {
    if (btf_.types_[id].kflag) return type_err(id, "kflag must be 0");
    return ok_status();
  }
  Status no_vlen_kflag(uint32_t id) const {
    if (btf_.types_[id].vlen != 0) return type_err(id, "vlen must be 0");
    return no_kflag(id);
  }

  bool in_range(uint32_t ref) const { return ref < btf_.count(); }

  // Every id a type refers to exists, and is of a kind that may be there.
  Status check_refs(uint32_t id) const {
    const BtfType& t = btf_.types_[id];
    if (follows_type(t.kind) || t.kind == BtfKind::Func || t.kind == BtfKind::DeclTag) {
      if (!in_range(t.type))
        return type_err(id, "refers to type ", t.type, " (only ", btf_.count(), " types)");
    }
    switch (t.kind) {
      case BtfKind::Func:
        if (btf_.kind(t.type) != BtfKind::FuncProto)
          return type_err(id, "type ", t.type, " is not a func_proto");
        return ok_status();
      case BtfKind::Var:
        if (t.type == 0 || btf_.kind(t.type) == BtfKind::Func || btf_.kind(t.type) == BtfKind::FuncProto)
          return type_err(id, "a var of type ", btf_.describe(t.type));
        return ok_status();
      case BtfKind::DeclTag: return check_decl_tag(id);
      case BtfKind::Array:
        if (t.array_elem == 0 || !in_range(t.array_elem) || !in_range(t.array_index))
          return type_err(id, "bad element type ", t.array_elem, " or index type ", t.array_index);
        return ok_status();
      case BtfKind::Struct:
      case BtfKind::Union:
        for (const BtfMember& m : btf_.members(id))
          if (m.type == 0 || !in_range(m.type))
            return type_err(id, "member '", m.name, "' has bad type ", m.type);
        return ok_status();
      case BtfKind::FuncProto: return check_proto(id);
      case BtfKind::Datasec:
        for (const BtfVarSecinfo& v : btf_.secinfos(id))
          if (btf_.kind(v.type) != BtfKind::Var && btf_.kind(v.type) != BtfKind::Func)
            return type_err(id, "entry of type ", v.type, " is neither a var nor a func");
        return ok_status();
      default: return ok_status();
    }
  }

  Status check_proto(uint32_t id) const {
    const BtfType& t = btf_.types_[id];
    if (!in_range(t.type)) return type_err(id, "return type ", t.type, " out of range");
    auto params = btf_.params(id);
    for (size_t i = 0; i < params.size(); ++i) {
      if (!in_range(params[i].type)) return type_err(id, "parameter ", i, " has bad type ", params[i].type);
      // Type 0 is `...`: nameless, and only last (btf_func_proto_check).
      if (params[i].type == 0 && (i + 1 != params.size() || !params[i].name.empty()))
        return type_err(id, "parameter ", i, " is void");
    }
    return ok_status();
  }

  // A decl tag annotates a struct/union (or one of its members), a var, a
  // typedef, or a func (or one of its parameters).
  Status check_decl_tag(uint32_t id) const {
    const BtfType& t = btf_.types_[id];
    BtfKind k = btf_.kind(t.type);
    int64_t limit = 0;  // how many components the target has
    if (k == BtfKind::Struct || k == BtfKind::Union)
      limit = btf_.types_[t.type].vlen;
    else if (k == BtfKind::Func && in_range(btf_.types_[t.type].type))
      limit = btf_.types_[btf_.types_[t.type].type].vlen;
    else if (k != BtfKind::Var && k != BtfKind::Typedef)
      return type_err(id, "tags ", btf_.describe(t.type));
    if (t.component_idx < -1 || t.component_idx >= limit)
      return type_err(id, "component index ", t.component_idx, " out of range");
    return ok_status();
  }

  // Chains of modifiers, pointers, vars and array elements end within
  // kMaxDepth steps, without a cycle. Memoized, so linear overall.
  Status check_depth(uint32_t id, int level) {
    if (depth_[id] >= 0) return ok_status();
    if (level > kMaxDepth) return type_err(id, "type chain deeper than ", kMaxDepth, " or cyclic");
    const BtfType& t = btf_.types_[id];
    uint32_t next = follows_type(t.kind) ? t.type : t.kind == BtfKind::Array ? t.array_elem : 0;
    if (next == 0) {
      depth_[id] = 0;
      return ok_status();
    }
    if (auto st = check_depth(next, level + 1); !st) return st;
    depth_[id] = depth_[next] + 1;
    if (depth_[id] > kMaxDepth) return type_err(id, "type chain deeper than ", kMaxDepth);
    return ok_status();
  }

  // Sizes add up: members inside their struct, arrays within 4 GiB,
  // DATASEC entries inside the section once it has a size.
  Status check_layout(uint32_t id) const {
    const BtfType& t = btf_.types_[id];
    switch (t.kind) {
      case BtfKind::Struct:
      case BtfKind::Union: {
        for (const BtfMember& m : btf_.members(id))
          if (auto st = check_member(id, m); !st) return st;
        return ok_status();
      }
      case BtfKind::Array: {
        auto size = btf_.size_of(id);
        if (!size) return type_err(id, size.error().message);
        if (*size > UINT32_MAX) return type_err(id, "array size ", *size, " overflows 32 bits");
        return ok_status();
      }
      case BtfKind::Datasec:
        for (const BtfVarSecinfo& v : btf_.secinfos(id))
          if (t.size != 0 && !fits(v.offset, v.size, t.size))
            return type_err(id, "entry ", btf_.describe(v.type), " at ", v.offset, " outside the section");
        return ok_status();
      default: return ok_status();
    }
  }

  Status check_member(uint32_t id, const BtfMember& m) const {
    const BtfType& t = btf_.types_[id];
    auto size = btf_.size_of(m.type);
    if (!size) return type_err(id, "member '", m.name, "': ", size.error().message);
    uint64_t bits = *size * 8;
    const BtfType& mt = *btf_.type(btf_.resolve(m.type));
    if (m.bitfield_size != 0) {
      if (m.bitfield_size > 128 || m.bitfield_size > bits)
        return type_err(id, "member '", m.name, "': bitfield of ", m.bitfield_size, " bits");
      bits = m.bitfield_size;
    } else if (mt.kind == BtfKind::Int && (m.bit_offset % 8 != 0 || mt.int_offset != 0)) {
      bits = uint64_t{mt.int_offset} + mt.int_bits;  // an old-style bitfield (btf_int_check_member)
    } else if (m.bit_offset % 8 != 0) {
      return type_err(id, "member '", m.name, "' is not byte aligned");
    }
    if (uint64_t{m.bit_offset} + bits > uint64_t{t.size} * 8)
      return type_err(id, "member '", m.name, "' at bit ", m.bit_offset, " does not fit in ", t.size,
                      " bytes");
    return ok_status();
  }

  void index_names() {
    for (uint32_t id = 1; id < btf_.count(); ++id) {
      std::string_view n = btf_.types_[id].name;
      if (!n.empty()) btf_.by_name_[btf_essential_name(n)].push_back(id);
    }
  }

  std::span<const uint8_t> bytes_;
  std::span<const uint8_t> types_;
  std::vector<int> depth_;
  Btf btf_;
};

Result<Btf> Btf::parse(std::span<const uint8_t> btf_section, std::string what) {
  return BtfParser(btf_section, std::move(what)).run();
}

Result<Btf> Btf::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(path, ": cannot open");
  std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
  if (in.bad()) return fail(path, ": read error");
  return parse(bytes, path);
}

std::span<const BtfMember> Btf::members(uint32_t id) const {
  const BtfType* t = type(id);
  if (!t || (t->kind != BtfKind::Struct && t->kind != BtfKind::Union)) return {};
  return std::span(members_).subspan(t->first, t->vlen);
}

std::span<const BtfEnumValue> Btf::enum_values(uint32_t id) const {
  const BtfType* t = type(id);
  if (!t || (t->kind != BtfKind::Enum && t->kind != BtfKind::Enum64)) return {};
  return std::span(enum_values_).subspan(t->first, t->vlen);
}

std::span<const BtfParam> Btf::params(uint32_t id) const {
  const BtfType* t = type(id);
  if (!t || t->kind != BtfKind::FuncProto) return {};
  return std::span(params_).subspan(t->first, t->vlen);
}

std::span<const BtfVarSecinfo> Btf::secinfos(uint32_t id) const {
  const BtfType* t = type(id);
  if (!t || t->kind != BtfKind::Datasec) return {};
  return std::span(secinfos_).subspan(t->first, t->vlen);
}

uint32_t Btf::resolve(uint32_t id) const {
  // Chains are at most kMaxDepth long (checked by the parser); the bound
  // keeps this total for any id.
  for (int i = 0; i <= kMaxDepth && id < types_.size() && is_modifier(types_[id].kind); ++i)
    id = types_[id].type;
  return id;
}

Result<uint64_t> Btf::size_of(uint32_t id) const {
  uint64_t factor = 1;  // product of the array lengths walked through
  for (int i = 0; i <= kMaxDepth; ++i) {
    const BtfType* t = type(id);
    if (!t) return fail("type ", id, " out of range");
    switch (t->kind) {
      case BtfKind::Int:
      case BtfKind::Enum:
      case BtfKind::Enum64:
      case BtfKind::Struct:
      case BtfKind::Union:
      case BtfKind::Float:
      case BtfKind::Datasec: return factor * t->size;
      case BtfKind::Ptr: return factor * 8;
      case BtfKind::Array:
        // Each factor is below 2^32 and the product is checked before it can
        // pass 2^32 * 2^32.
        factor *= t->array_nelems;
        if (factor > UINT32_MAX) return fail(describe(id), ": array size overflows 32 bits");
        id = t->array_elem;
        break;
      case BtfKind::Void:
      case BtfKind::Fwd:
      case BtfKind::Func:
      case BtfKind::FuncProto: return fail(describe(id), " has no size");
      default: id = t->type; break;  // modifiers, typedef, var, decl tag (as libbpf's btf__resolve_size)
    }
  }
  return fail(describe(id), ": type chain too deep");
}

uint32_t Btf::find(std::string_view name, BtfKind kind) const {
  auto it = by_name_.find(btf_essential_name(name));
  if (it == by_name_.end()) return 0;
  for (uint32_t id : it->second)
    if (types_[id].kind == kind && types_[id].name == name) return id;
  return 0;
}

std::vector<uint32_t> Btf::find_by_essential_name(std::string_view essential) const {
  auto it = by_name_.find(essential);
  return it == by_name_.end() ? std::vector<uint32_t>{} : it->second;
}

namespace {

// Spells a type as C would declare it, building the declarator inside out:
// pointers prefix "*", arrays and function types suffix "[N]" and "(...)",
// and a pointer to either is parenthesized ("int (*)[4]"). A step budget
// keeps hostile BTF (function types whose parameters point back at
// themselves) from making the spelling unbounded.
class TypeSpeller {
 public:
  explicit TypeSpeller(const Btf& btf) : btf_(btf) {}

  std::string spell(uint32_t id, const std::string& inner) {
    if (++steps_ > kBudget) return join("...", inner);
    const BtfType* t = btf_.type(id);
    if (!t) return join("<bad type " + std::to_string(id) + ">", inner);
    std::string name(t->name);
    switch (t->kind) {
      case BtfKind::Void: return join("void", inner);
      case BtfKind::Struct:
      case BtfKind::Union:
      case BtfKind::Enum:
      case BtfKind::Enum64: return join(tagged(*t), inner);
      case BtfKind::Fwd: return join((t->kflag ? "union " : "struct ") + name, inner);
      case BtfKind::Ptr: {
        BtfKind next = btf_.kind(t->type);
        bool wrap = next == BtfKind::Array || next == BtfKind::FuncProto;
        return spell(t->type, wrap ? "(*" + inner + ")" : "*" + inner);
      }
      case BtfKind::Const:
      case BtfKind::Volatile:
      case BtfKind::Restrict: {
        std::string q = btf_kind_name(t->kind);
        if (btf_.kind(t->type) == BtfKind::Ptr) return spell(t->type, inner.empty() ? q : q + " " + inner);
        return q + " " + spell(t->type, inner);
      }
      case BtfKind::TypeTag: return spell(t->type, inner);
      case BtfKind::Array: return spell(t->array_elem, inner + "[" + std::to_string(t->array_nelems) + "]");
      case BtfKind::FuncProto: return spell(t->type, inner + "(" + params(id) + ")");
      case BtfKind::Func: return spell(t->type, name);
      case BtfKind::Var: return spell(t->type, name);
      case BtfKind::Datasec: return join("datasec " + name, inner);
      case BtfKind::DeclTag: return join("decl_tag " + name, inner);
      default: return join(name, inner);  // int, float, typedef
    }
  }

 private:
  static constexpr int kBudget = 256;

  static std::string join(const std::string& base, const std::string& inner) {
    if (inner.empty()) return base;
    return inner[0] == '[' ? base + inner : base + " " + inner;
  }

  static std::string tagged(const BtfType& t) {
    const char* tag = t.kind == BtfKind::Struct ? "struct " : t.kind == BtfKind::Union ? "union " : "enum ";
    return tag + (t.name.empty() ? std::string("(anon)") : std::string(t.name));
  }

  std::string params(uint32_t proto) {
    auto ps = btf_.params(proto);
    if (ps.empty()) return "void";
    std::string s;
    for (const BtfParam& p : ps) {
      if (!s.empty()) s += ", ";
      s += p.type == 0 ? "..." : spell(p.type, "");
    }
    return s;
  }

  const Btf& btf_;
  int steps_ = 0;
};

}  // namespace

std::string Btf::to_string(uint32_t id) const { return TypeSpeller(*this).spell(id, ""); }

Result<std::string_view> Btf::string_at(uint32_t offset) const {
  if (!strings_ || offset >= strings_->size())
    return fail("string offset ", offset, " outside the string section");
  return std::string_view(strings_->c_str() + offset);  // the section ends with a NUL
}

std::string Btf::describe(uint32_t id) const {
  std::string s = "[" + std::to_string(id) + "] ";
  for (const char* c = btf_kind_name(kind(id)); *c; ++c) s += static_cast<char>(std::toupper(*c));
  return s + " '" + std::string(name(id)) + "'";
}

}  // namespace ember
