// Where the current process sits in the cgroup v2 hierarchy, as
// bpf_current_task_under_cgroup needs it: the inode numbers of its cgroup
// and of every ancestor up to the hierarchy's root (the kernel compares
// cgroup ids, and a cgroup's id is its directory's inode number in
// cgroupfs).
//
// Finding them means reading /proc/self/mounts and /proc/self/cgroup and a
// stat() per level: tens of microseconds, which a probe on a hot function
// cannot pay on every call. So the answer is kept for `max_age` (the
// kernel sees a move to another cgroup at once; here it shows within
// max_age) and the mount point for good. One per Runtime (the helper's
// HelperEnv hands it out); thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "ember/result.hpp"

namespace ember {

class CgroupView {
 public:
  explicit CgroupView(std::chrono::milliseconds max_age = std::chrono::milliseconds(100))
      : max_age_(max_age) {}

  // Whether the cgroup with inode number `ino` is this process's cgroup or
  // one of its ancestors. An error when no cgroup2 hierarchy is mounted or
  // /proc/self/cgroup names no v2 cgroup.
  Result<bool> under(uint64_t ino);

 private:
  Status refresh();  // with mu_ held
  std::mutex mu_;
  const std::chrono::milliseconds max_age_;
  bool have_ = false;  // chain_ was read at read_at_
  std::chrono::steady_clock::time_point read_at_{};
  std::string mount_;            // the cgroup2 mount, found once
  std::vector<uint64_t> chain_;  // the process's cgroup first, the root last
};

}  // namespace ember
