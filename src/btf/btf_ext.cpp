// The .BTF.ext parser. Layout as libbpf reads it (btf.c: btf_ext_parse_hdr,
// btf_ext_setup_info): a header of offsets and lengths, then per kind of
// record a u32 record size followed by one block per ELF section:
// { u32 sec_name_off; u32 num_info; record[num_info] }. Records may be
// larger than the ones known here (newer compilers append fields), never
// smaller, and always a multiple of 4 bytes.
#include <algorithm>

#include "btf/byte_reader.hpp"
#include "ember/btf.hpp"

namespace ember {
namespace {

using btf_detail::ByteReader;
using btf_detail::fits;
using btf_detail::hex;

constexpr uint16_t kMagic = 0xeb9f;
constexpr uint32_t kMinHeader = 24;   // up to line_info_len
constexpr uint32_t kCoreHeader = 32;  // with core_relo_off and core_relo_len
constexpr uint32_t kFuncInfoSize = 8, kLineInfoSize = 16, kCoreReloSize = 16;
constexpr uint32_t kMaxKind = static_cast<uint32_t>(CoreReloKind::TypeMatches);

struct Subsection {
  const char* name;  // "func_info" ...
  uint32_t off = 0, len = 0;
};

}  // namespace

const char* core_relo_kind_name(CoreReloKind kind) {
  static const char* const names[] = {"byte_off",    "byte_sz",    "field_exists",   "signed",
                                      "lshift_u64",  "rshift_u64", "local_type_id",  "target_type_id",
                                      "type_exists", "type_size",  "enumval_exists", "enumval_value",
                                      "type_matches"};
  auto i = static_cast<size_t>(kind);
  return i < std::size(names) ? names[i] : "unknown";
}

class BtfExtParser {
 public:
  BtfExtParser(std::span<const uint8_t> bytes, const Btf& btf, std::string what)
      : bytes_(bytes), btf_(btf), what_(std::move(what)) {}

  Result<BtfExt> run() {
    Subsection func{"func_info"}, line{"line_info"}, core{"core_relo"};
    if (auto st = header(func, line, core); !st) return st.error();
    if (auto st = blocks(func, kFuncInfoSize, ext_.func_info_, &BtfExtParser::func_record); !st)
      return st.error();
    if (auto st = blocks(line, kLineInfoSize, ext_.line_info_, &BtfExtParser::line_record); !st)
      return st.error();
    if (auto st = blocks(core, kCoreReloSize, ext_.core_relos_, &BtfExtParser::core_record); !st)
      return st.error();
    return std::move(ext_);
  }

 private:
  template <class... Parts>
  Error err(Parts&&... parts) const {
    return fail(what_, ": .BTF.ext: ", std::forward<Parts>(parts)...);
  }

  Status header(Subsection& func, Subsection& line, Subsection& core) {
    ByteReader r(bytes_);
    uint16_t magic = r.u16();
    uint8_t version = r.u8(), flags = r.u8();
    uint32_t hdr_len = r.u32();
    func.off = r.u32(), func.len = r.u32(), line.off = r.u32(), line.len = r.u32();
    if (!r.ok()) return err("header truncated (", bytes_.size(), " bytes, need ", kMinHeader, ")");
    if (magic != kMagic) return err("bad magic ", hex(magic), " (want 0xeb9f)");
    if (version != 1 || flags != 0) return err("unsupported version ", version, " or flags ", hex(flags));
    if (hdr_len < kMinHeader || hdr_len > bytes_.size())
      return err("header length ", hdr_len, " outside [24, ", bytes_.size(), "]");
    if (hdr_len >= kCoreHeader) core.off = r.u32(), core.len = r.u32();
    data_ = bytes_.subspan(hdr_len);
    for (const Subsection* s : {&func, &line, &core})
      if (!fits(s->off, s->len, data_.size()))
        return err(s->name, " [", s->off, ", +", s->len, ") outside the data (", data_.size(), " bytes)");
    return ok_status();
  }

  // One subsection: the record size, then blocks of records per section.
  template <class Record>
  Status blocks(const Subsection& s, uint32_t min_size, std::vector<BtfExtSection<Record>>& out,
                Status (BtfExtParser::*read)(ByteReader&, Record&)) {
    if (s.len == 0) return ok_status();
    ByteReader r(data_.subspan(s.off, s.len));
    uint32_t record_size = r.u32();
    if (!r.ok() || record_size < min_size || record_size % 4 != 0)
      return err(s.name, ": record size ", record_size, " (at least ", min_size, ", a multiple of 4)");
    while (r.left() > 0) {
      uint32_t name_off = r.u32(), num = r.u32();
      if (!r.ok()) return err(s.name, ": block header truncated");
      auto name = btf_.string_at(name_off);
      if (!name) return err(s.name, ": section name: ", name.error().message);
      if (num == 0) return err(s.name, " of section '", *name, "': no records");
      if (uint64_t{num} * record_size > r.left())
        return err(s.name, " of section '", *name, "': ", num, " records of ", record_size, " bytes overrun");
      BtfExtSection<Record> sec{std::string(*name), {}};
      for (uint32_t i = 0; i < num; ++i) {
        uint64_t start = r.pos();
        Record rec;
        if (auto st = (this->*read)(r, rec); !st)
          return err(s.name, " of section '", *name, "' record ", i, ": ", st.error().message);
        if (rec.insn_off % 8 != 0)
          return err(s.name, " of section '", *name, "': insn_off ", rec.insn_off, " not a slot");
        r.skip(record_size - (r.pos() - start));  // fields this parser does not know
        sec.records.push_back(std::move(rec));
      }
      std::stable_sort(sec.records.begin(), sec.records.end(),
                       [](const Record& a, const Record& b) { return a.insn_off < b.insn_off; });
      out.push_back(std::move(sec));
    }
    return ok_status();
  }

  Status func_record(ByteReader& r, BtfFuncInfo& f) {
    f.insn_off = r.u32(), f.type_id = r.u32();
    if (btf_.kind(f.type_id) != BtfKind::Func) return fail("type ", f.type_id, " is not a FUNC");
    return ok_status();
  }

  Status line_record(ByteReader& r, BtfLineInfo& l) {
    l.insn_off = r.u32();
    auto file = btf_.string_at(r.u32());
    auto source = btf_.string_at(r.u32());
    uint32_t line_col = r.u32();
    if (!file) return file.error();
    if (!source) return source.error();
    l.file = *file, l.source = *source;
    l.line = line_col >> 10, l.column = line_col & 0x3ff;  // BPF_LINE_INFO_LINE_NUM / _LINE_COL
    return ok_status();
  }

  Status core_record(ByteReader& r, BtfCoreRelo& c) {
    c.insn_off = r.u32(), c.type_id = r.u32();
    auto access = btf_.string_at(r.u32());
    uint32_t kind = r.u32();
    if (!access) return access.error();
    if (c.type_id == 0 || c.type_id >= btf_.count()) return fail("type id ", c.type_id, " out of range");
    if (kind > kMaxKind) return fail("unknown relocation kind ", kind);
    c.access = *access;
    c.kind = static_cast<CoreReloKind>(kind);
    return ok_status();
  }

  std::span<const uint8_t> bytes_, data_;
  const Btf& btf_;
  std::string what_;
  BtfExt ext_;
};

Result<BtfExt> BtfExt::parse(std::span<const uint8_t> bytes, const Btf& btf, std::string what) {
  return BtfExtParser(bytes, btf, std::move(what)).run();
}

namespace {

// The last record at or before byte offset insn * 8 in the named section.
template <class Record>
const Record* at_or_before(const std::vector<BtfExtSection<Record>>& secs, std::string_view name,
                           uint32_t insn) {
  uint64_t off = uint64_t{insn} * 8;
  for (const auto& sec : secs) {
    if (sec.name != name) continue;
    auto it = std::upper_bound(sec.records.begin(), sec.records.end(), off,
                               [](uint64_t o, const Record& r) { return o < r.insn_off; });
    return it == sec.records.begin() ? nullptr : &*std::prev(it);
  }
  return nullptr;
}

}  // namespace

const BtfLineInfo* BtfExt::line_at(std::string_view section, uint32_t insn) const {
  return at_or_before(line_info_, section, insn);
}

uint32_t BtfExt::func_at(std::string_view section, uint32_t insn) const {
  const BtfFuncInfo* f = at_or_before(func_info_, section, insn);
  return f ? f->type_id : 0;
}

}  // namespace ember
