// Hand-built BTF for tests: types the compiler does not emit (ENUM64),
// target layouts for CO-RE, and corrupt input. Ids are returned in the
// order types are added, starting at 1, as in a real .BTF section.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace ember::testing {

class BtfBuilder {
 public:
  struct Member {
    std::string_view name;
    uint32_t type;
    uint32_t bit_offset;
    uint32_t bitfield_size = 0;
  };
  struct Enumerator {
    std::string_view name;
    int64_t value;
  };
  struct Param {
    std::string_view name;
    uint32_t type;
  };

  uint32_t str(std::string_view s) {
    if (s.empty()) return 0;
    auto off = static_cast<uint32_t>(strings_.size());
    strings_ += s;
    strings_ += '\0';
    return off;
  }

  // A raw struct btf_type: kind, vlen and kflag packed into info as the
  // kernel's BTF_INFO_ENC does.
  uint32_t raw(std::string_view name, uint32_t kind, uint32_t vlen, bool kflag, uint32_t size_or_type) {
    words_.push_back(str(name));
    words_.push_back((kflag ? 1u << 31 : 0) | (kind << 24) | vlen);
    words_.push_back(size_or_type);
    return ++count_;
  }
  void word(uint32_t w) { words_.push_back(w); }

  uint32_t int_type(std::string_view name, uint32_t size, bool is_signed = true) {
    uint32_t id = raw(name, 1, 0, false, size);
    word((is_signed ? 1u << 24 : 0) | size * 8);
    return id;
  }
  uint32_t ptr(uint32_t to) { return raw("", 2, 0, false, to); }
  uint32_t array(uint32_t elem, uint32_t index, uint32_t n) {
    uint32_t id = raw("", 3, 0, false, 0);
    word(elem), word(index), word(n);
    return id;
  }
  uint32_t composite(bool is_union, std::string_view name, uint32_t size, std::initializer_list<Member> ms) {
    bool kflag = false;
    for (const Member& m : ms) kflag |= m.bitfield_size != 0;
    uint32_t id = raw(name, is_union ? 5 : 4, static_cast<uint32_t>(ms.size()), kflag, size);
    for (const Member& m : ms)
      word(str(m.name)), word(m.type), word(kflag ? m.bitfield_size << 24 | m.bit_offset : m.bit_offset);
    return id;
  }
  uint32_t struct_type(std::string_view name, uint32_t size, std::initializer_list<Member> ms) {
    return composite(false, name, size, ms);
  }
  uint32_t enum_type(std::string_view name, uint32_t size, std::initializer_list<Enumerator> es,
                     bool wide = false) {
    uint32_t id = raw(name, wide ? 19 : 6, static_cast<uint32_t>(es.size()), false, size);
    for (const Enumerator& e : es) {
      word(str(e.name)), word(static_cast<uint32_t>(e.value));
      if (wide) word(static_cast<uint32_t>(static_cast<uint64_t>(e.value) >> 32));
    }
    return id;
  }
  uint32_t typedef_type(std::string_view name, uint32_t to) { return raw(name, 8, 0, false, to); }
  uint32_t const_type(uint32_t to) { return raw("", 10, 0, false, to); }
  uint32_t func_proto(uint32_t ret, std::initializer_list<Param> ps) {
    uint32_t id = raw("", 13, static_cast<uint32_t>(ps.size()), false, ret);
    for (const Param& p : ps) word(str(p.name)), word(p.type);
    return id;
  }
  uint32_t func(std::string_view name, uint32_t proto) { return raw(name, 12, 1, false, proto); }
  uint32_t var(std::string_view name, uint32_t type) {
    uint32_t id = raw(name, 14, 0, false, type);
    word(1);  // BTF_VAR_GLOBAL_ALLOCATED
    return id;
  }

  // Header, type section, string section (struct btf_header, version 1).
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out;
    auto put = [&out](uint32_t v) {
      for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    };
    auto type_len = static_cast<uint32_t>(words_.size() * 4);
    put(0x0001eb9f);  // magic, version 1, flags 0
    put(24), put(0), put(type_len), put(type_len), put(static_cast<uint32_t>(strings_.size()));
    for (uint32_t w : words_) put(w);
    out.insert(out.end(), strings_.begin(), strings_.end());
    return out;
  }

 private:
  std::string strings_{'\0'};
  std::vector<uint32_t> words_;
  uint32_t count_ = 0;
};

}  // namespace ember::testing
