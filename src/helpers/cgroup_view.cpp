#include "helpers/cgroup_view.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>

namespace ember {
namespace {

// Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on a unified
// system, /sys/fs/cgroup/unified on a hybrid one (systemd's cgroup v1
// layout, where the v2 tree holds no controllers but every process).
std::string cgroup2_mount() {
  std::ifstream f("/proc/self/mounts");
  std::string dev, dir, type, rest;
  while (f >> dev >> dir >> type && std::getline(f, rest))
    if (type == "cgroup2") return dir;
  return "";
}

// The process's cgroup v2 path below the mount, from /proc/self/cgroup's
// "0::/path" line ("/" for the root); "" if there is none.
std::string own_cgroup_path() {
  std::ifstream f("/proc/self/cgroup");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return "";
}

}  // namespace

Status CgroupView::refresh() {
  if (mount_.empty()) mount_ = cgroup2_mount();
  if (mount_.empty()) return fail("no cgroup2 hierarchy is mounted (/proc/self/mounts)");
  std::string path = own_cgroup_path();
  if (path.empty()) return fail("/proc/self/cgroup names no cgroup v2 cgroup");
  std::string dir = path == "/" ? mount_ : mount_ + path;
  chain_.clear();
  for (;;) {
    struct stat st {};
    if (stat(dir.c_str(), &st) == 0) chain_.push_back(st.st_ino);
    if (dir.size() <= mount_.size()) break;
    dir.resize(dir.find_last_of('/'));
  }
  if (chain_.empty()) return fail("cannot stat the cgroup directories under ", mount_);
  return ok_status();
}

Result<bool> CgroupView::under(uint64_t ino) {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (!have_ || now - read_at_ >= max_age_) {
    have_ = false;
    if (auto st = refresh(); !st) return st.error();
    have_ = true;
    read_at_ = now;
  }
  return std::find(chain_.begin(), chain_.end(), ino) != chain_.end();
}

}  // namespace ember
