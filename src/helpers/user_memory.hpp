// Fault-safe access to memory a program names but cannot be trusted to be
// mapped (probe_read_user and friends): process_vm_readv on our own pid
// reports an unmapped address as EFAULT instead of crashing the process.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ember {

// 0, or -EFAULT if any byte is unreadable (then `dst` is zeroed, as the
// kernel's bpf_probe_read_user leaves it).
long read_user(void* dst, uint64_t src, size_t n);
// Copies a NUL-terminated string of at most n - 1 characters plus the NUL;
// returns the bytes written including the NUL, or -EFAULT if the first
// byte is unreadable (the kernel's strncpy_from_user semantics).
long read_user_str(char* dst, uint64_t src, size_t n);
// 0, or -EFAULT if any byte is not writable.
long write_user(uint64_t dst, const void* src, size_t n);

}  // namespace ember
