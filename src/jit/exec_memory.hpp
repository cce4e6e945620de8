// Memory for generated code: written while private and read-write, then
// made read-only and executable before it is ever run, so that no page is
// writable and executable at once (W^X). Unmapped on destruction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "ember/result.hpp"

namespace ember::jit {

class ExecMemory {
 public:
  ExecMemory() = default;
  // Maps a copy of `code` and seals it (read + execute).
  static Result<ExecMemory> create(std::span<const uint8_t> code);
  ExecMemory(ExecMemory&& o) noexcept : base_(o.base_), size_(o.size_), mapped_(o.mapped_) {
    o.base_ = nullptr, o.size_ = o.mapped_ = 0;
  }
  ExecMemory& operator=(ExecMemory&& o) noexcept;
  ExecMemory(const ExecMemory&) = delete;
  ExecMemory& operator=(const ExecMemory&) = delete;
  ~ExecMemory();

  const uint8_t* data() const { return base_; }
  size_t size() const { return size_; }

 private:
  uint8_t* base_ = nullptr;
  size_t size_ = 0;    // code bytes
  size_t mapped_ = 0;  // whole pages
};

}  // namespace ember::jit
