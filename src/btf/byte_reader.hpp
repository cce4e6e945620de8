// Little-endian reads from untrusted bytes for the BTF parsers: every read is
// checked, and the sums that check it cannot wrap around.
#pragma once

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace ember::btf_detail {

// True when [off, off + len) lies inside a buffer of `total` bytes.
inline bool fits(uint64_t off, uint64_t len, uint64_t total) { return off <= total && len <= total - off; }

inline std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

// A cursor over a byte range. Reads past the end fail and leave `ok` false,
// so a record can be read field by field and checked once.
class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> bytes, uint64_t pos = 0) : bytes_(bytes), pos_(pos) {}

  uint32_t u32() { return static_cast<uint32_t>(read(4)); }
  uint16_t u16() { return static_cast<uint16_t>(read(2)); }
  uint8_t u8() { return static_cast<uint8_t>(read(1)); }
  bool ok() const { return ok_; }
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return pos_ <= bytes_.size() ? bytes_.size() - pos_ : 0; }
  void skip(uint64_t n) {
    if (!fits(pos_, n, bytes_.size()))
      ok_ = false;
    else
      pos_ += n;
  }

 private:
  uint64_t read(size_t n) {
    if (!fits(pos_, n, bytes_.size())) {
      ok_ = false;
      return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{bytes_[pos_ + i]} << (8 * i);
    pos_ += n;
    return v;
  }

  std::span<const uint8_t> bytes_;
  uint64_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace ember::btf_detail
