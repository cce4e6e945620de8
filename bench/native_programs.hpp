// The benchmark programs' algorithms as plain C++, compiled at -O2 (see
// bench/CMakeLists.txt): the "native" column the JIT is judged against.
// Each works on the same memory (and maps) as the eBPF program and returns
// the same r0. They live in their own translation unit, and the bench calls
// them through native_program()'s pointers with every input loaded through
// benchmark::DoNotOptimize, so the compiler cannot fold any of them to a
// constant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ember/maps.hpp"

namespace ember::bench {

// mem: the program's memory (it may be written, as the eBPF program does);
// map: the program's map, or null.
using NativeFn = uint64_t (*)(uint8_t* mem, size_t size, Map* map);

// The native version of the bench program `name`, or null if there is none.
NativeFn native_program(std::string_view name);

}  // namespace ember::bench
