// BTF, the BPF Type Format (Documentation/bpf/btf.rst): the types of an
// object's `.BTF` section or of the kernel's /sys/kernel/btf/vmlinux, and the
// `.BTF.ext` records that tie instructions to functions, source lines and
// CO-RE relocations. Input is untrusted: parsing validates every id, name
// and size, and the queries never read outside what parsing checked.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ember/isa.hpp"
#include "ember/result.hpp"

namespace ember {

// BTF_KIND_* of linux/btf.h; Void is id 0, which no record describes.
enum class BtfKind : uint8_t {
  Void = 0,
  Int = 1,
  Ptr = 2,
  Array = 3,
  Struct = 4,
  Union = 5,
  Enum = 6,
  Fwd = 7,
  Typedef = 8,
  Volatile = 9,
  Const = 10,
  Restrict = 11,
  Func = 12,
  FuncProto = 13,
  Var = 14,
  Datasec = 15,
  Float = 16,
  DeclTag = 17,
  TypeTag = 18,
  Enum64 = 19,
};
const char* btf_kind_name(BtfKind kind);  // "struct", "int", "func_proto" ...

// BTF_INT_ENCODING bits.
namespace btf_int {
constexpr uint8_t kSigned = 1, kChar = 2, kBool = 4;
}

struct BtfMember {  // STRUCT and UNION members
  std::string_view name;
  uint32_t type = 0;
  uint32_t bit_offset = 0;     // from the start of the struct
  uint32_t bitfield_size = 0;  // 0 unless a bitfield (kflag structs only)
};

struct BtfEnumValue {  // ENUM and ENUM64 values, sign-extended when signed
  std::string_view name;
  int64_t value = 0;
};

struct BtfParam {  // FUNC_PROTO parameters; "" and type 0 for a final `...`
  std::string_view name;
  uint32_t type = 0;
};

struct BtfVarSecinfo {  // DATASEC entries
  uint32_t type = 0;    // a VAR or FUNC
  uint32_t offset = 0;  // in the ELF section
  uint32_t size = 0;
};

struct BtfType {
  BtfKind kind = BtfKind::Void;
  bool kflag = false;  // bitfield structs, FWD of a union, signed enums
  uint16_t vlen = 0;   // number of members, values, params or secinfos
  std::string_view name;
  // INT, ENUM, ENUM64, STRUCT, UNION, DATASEC, FLOAT: size in bytes.
  uint32_t size = 0;
  // PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG, FUNC (its proto),
  // FUNC_PROTO (return type), VAR, DECL_TAG: the type referred to.
  uint32_t type = 0;
  uint8_t int_encoding = 0, int_offset = 0, int_bits = 0;      // INT
  uint32_t array_elem = 0, array_index = 0, array_nelems = 0;  // ARRAY
  uint32_t linkage = 0;                                        // VAR, FUNC
  int32_t component_idx = -1;  // DECL_TAG: member/param index, -1 for the whole
  uint32_t first = 0;          // where its members/values/params/secinfos start
};

class Btf {
 public:
  // Parses and validates a `.BTF` section (header, strings, every type).
  // `what` names the source in error messages (file or path). The bytes are
  // copied, so `btf_section` may be dropped after.
  static Result<Btf> parse(std::span<const uint8_t> btf_section, std::string what);
  // Reads a raw BTF file such as /sys/kernel/btf/vmlinux.
  static Result<Btf> load_file(const std::string& path);
  static constexpr const char* kVmlinuxPath = "/sys/kernel/btf/vmlinux";

  // Number of ids, including id 0 (void).
  uint32_t count() const { return static_cast<uint32_t>(types_.size()); }
  // nullptr for an id out of range.
  const BtfType* type(uint32_t id) const { return id < types_.size() ? &types_[id] : nullptr; }
  std::string_view name(uint32_t id) const { return id < types_.size() ? types_[id].name : ""; }
  BtfKind kind(uint32_t id) const { return id < types_.size() ? types_[id].kind : BtfKind::Void; }

  std::span<const BtfMember> members(uint32_t id) const;         // STRUCT, UNION
  std::span<const BtfEnumValue> enum_values(uint32_t id) const;  // ENUM, ENUM64
  std::span<const BtfParam> params(uint32_t id) const;           // FUNC_PROTO
  std::span<const BtfVarSecinfo> secinfos(uint32_t id) const;    // DATASEC

  // Follows TYPEDEF, CONST, VOLATILE, RESTRICT and TYPE_TAG to the type they
  // name or qualify (the id itself if it is none of those): libbpf's
  // skip_mods_and_typedefs.
  uint32_t resolve(uint32_t id) const;
  // Size in bytes, as sizeof would give it: pointers are 8, arrays are
  // elements * element size, a VAR or DECL_TAG the size of its type. An
  // error for void, FWD, FUNC and FUNC_PROTO, which have none.
  Result<uint64_t> size_of(uint32_t id) const;
  // The first type with this exact name and kind; 0 if none.
  uint32_t find(std::string_view name, BtfKind kind) const;
  // Every type whose name is `essential` or `essential___flavor`, any kind
  // (libbpf's candidate search for CO-RE).
  std::vector<uint32_t> find_by_essential_name(std::string_view essential) const;
  // A C-like spelling: "struct foo", "unsigned int", "char[16]", "int *",
  // "const char *", "void (*)(int, long)".
  std::string to_string(uint32_t id) const;
  // "[7] STRUCT 'foo'": for messages.
  std::string describe(uint32_t id) const;
  // The NUL-terminated string at `offset` of the string section, or an
  // error if the offset is outside it (for .BTF.ext, which names into it).
  Result<std::string_view> string_at(uint32_t offset) const;
  const std::string& what() const { return what_; }

 private:
  friend class BtfParser;
  std::string what_;
  std::shared_ptr<const std::string> strings_;  // the names point into this
  std::vector<BtfType> types_;
  std::vector<BtfMember> members_;
  std::vector<BtfEnumValue> enum_values_;
  std::vector<BtfParam> params_;
  std::vector<BtfVarSecinfo> secinfos_;
  // essential name (without a "___flavor" suffix) -> ids; names point into strings_.
  std::unordered_map<std::string_view, std::vector<uint32_t>> by_name_;
};

// .BTF.ext (libbpf's struct btf_ext_header and the records after it): what
// clang writes beside .BTF to tie instructions to functions, source lines
// and CO-RE relocations, per ELF code section. Instruction offsets are in
// bytes from the start of that section, as in the object file.
struct BtfFuncInfo {  // struct bpf_func_info
  uint32_t insn_off = 0;
  uint32_t type_id = 0;  // a FUNC
};

struct BtfLineInfo {  // struct bpf_line_info
  uint32_t insn_off = 0;
  std::string file;
  std::string source;  // the text of the source line
  uint32_t line = 0;
  uint32_t column = 0;
};

// enum bpf_core_relo_kind.
enum class CoreReloKind : uint32_t {
  FieldByteOffset = 0,
  FieldByteSize = 1,
  FieldExists = 2,
  FieldSigned = 3,
  FieldLshiftU64 = 4,
  FieldRshiftU64 = 5,
  TypeIdLocal = 6,
  TypeIdTarget = 7,
  TypeExists = 8,
  TypeSize = 9,
  EnumvalExists = 10,
  EnumvalValue = 11,
  TypeMatches = 12,
};
const char* core_relo_kind_name(CoreReloKind kind);  // "byte_off", "type_exists" ... as libbpf prints them

struct BtfCoreRelo {  // struct bpf_core_relo
  uint32_t insn_off = 0;
  uint32_t type_id = 0;  // in the object's own BTF
  std::string access;    // "0:1:2": the access spec
  CoreReloKind kind = CoreReloKind::FieldByteOffset;
};

template <class Record>
struct BtfExtSection {
  std::string name;             // the ELF code section ("socket", ".text" ...)
  std::vector<Record> records;  // sorted by insn_off
};

class BtfExt {
 public:
  // Parses .BTF.ext against the .BTF it accompanies (names, FUNC ids and
  // access strings point into it). `what` names the file in messages.
  static Result<BtfExt> parse(std::span<const uint8_t> bytes, const Btf& btf, std::string what);

  const std::vector<BtfExtSection<BtfFuncInfo>>& func_info() const { return func_info_; }
  const std::vector<BtfExtSection<BtfLineInfo>>& line_info() const { return line_info_; }
  const std::vector<BtfExtSection<BtfCoreRelo>>& core_relos() const { return core_relos_; }

  // The line record that covers instruction `insn` (an index, 8 bytes per
  // slot) of `section`: the last one at or before it. nullptr if none.
  const BtfLineInfo* line_at(std::string_view section, uint32_t insn) const;
  // The FUNC that instruction `insn` of `section` belongs to, 0 if unknown.
  uint32_t func_at(std::string_view section, uint32_t insn) const;

 private:
  friend class BtfExtParser;
  std::vector<BtfExtSection<BtfFuncInfo>> func_info_;
  std::vector<BtfExtSection<BtfLineInfo>> line_info_;
  std::vector<BtfExtSection<BtfCoreRelo>> core_relos_;
};

// CO-RE (libbpf's relo_core.c semantics): each .BTF.ext core_relo record
// resolved against a target BTF (the kernel's, or any other) into a patch of
// one instruction of one code section.
struct CorePatch {
  std::string section;  // the ELF code section
  uint32_t insn = 0;    // instruction index in that section
  CoreReloKind kind = CoreReloKind::FieldByteOffset;
  uint32_t local_type_id = 0;
  std::string access;           // "0:1:2"
  uint32_t target_type_id = 0;  // the candidate that matched; 0 if none did
  // No candidate has the field, or a load cannot be resized safely: the
  // instruction becomes `call 0xbad2310`, so the program fails only if it
  // reaches it (libbpf's bpf_core_poison_insn).
  bool poison = false;
  bool validate = true;                  // the instruction must hold orig_value before patching
  uint64_t orig_value = 0;               // against the local BTF: what the compiler wrote
  uint64_t new_value = 0;                // against the target
  uint32_t orig_size = 0, new_size = 0;  // field sizes for loads/stores; 0 if not a sized field
  // The field changed size and is neither a pointer nor unsigned on both
  // sides: a load or store of it is poisoned (libbpf's fail_memsz_adjust).
  bool resize_unsafe = false;
};

// The helper id a poisoned instruction calls ("bad relo").
constexpr int32_t kCorePoisonHelper = 0xbad2310;

// Resolves every core_relo record of `ext` (which describes `local`, the
// object's BTF) against `target`. Candidates are the target types of the
// same kind whose names equal the local name once "___flavor" suffixes are
// dropped. Errors (malformed access strings, anonymous root types,
// ambiguous candidates) name the file `what`, the section, the instruction
// and the type.
Result<std::vector<CorePatch>> resolve_core_relocations(const Btf& local, const BtfExt& ext,
                                                        const Btf& target, const std::string& what);

// One record, for callers that hold records of their own.
Result<CorePatch> resolve_core_relocation(const Btf& local, const std::string& section,
                                          const BtfCoreRelo& relo, const Btf& target,
                                          const std::string& what);

// Applies the patches of `section` to its instructions (as in the object,
// before linking): immediates of ALU and ld_imm64 instructions, offsets (and
// sizes) of loads and stores, or poison. An instruction that does not hold
// the value the compiler should have put there is an error.
Status apply_core_patches(std::string_view section, std::vector<RawInsn>& insns,
                          std::span<const CorePatch> patches, const std::string& what);

// "foo" for "foo___v2" (libbpf's bpf_core_essential_name_len: the suffix
// starts at the LAST "___").
std::string_view btf_essential_name(std::string_view name);

}  // namespace ember
