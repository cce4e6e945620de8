// Result<T>: the value of an operation on untrusted input, or an error that
// says what went wrong and where. Broken invariants are asserts, not Results.
#pragma once

#include <cassert>
#include <string_view>
#include <type_traits>
#include <string>
#include <utility>
#include <variant>

namespace ember {

struct Error {
  std::string message;
};

inline std::string to_piece(const std::string& s) { return s; }
inline std::string to_piece(std::string_view s) { return std::string(s); }
inline std::string to_piece(const char* s) { return s; }
inline std::string to_piece(char c) { return std::string(1, c); }
template <class N>
  requires std::is_arithmetic_v<N>
std::string to_piece(N n) {
  return std::to_string(n);
}

// Builds an Error from parts, e.g. fail("instruction ", idx, ": bad register").
template <class... Parts>
Error fail(Parts&&... parts) {
  std::string s;
  ((s += to_piece(std::forward<Parts>(parts))), ...);
  return Error{std::move(s)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}       // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}   // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

struct Unit {};
using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

}  // namespace ember
