#include "runtime/registry.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ember {
namespace {

std::string own_file() { return run_dir() + "/" + std::to_string(getpid()) + ".objects"; }

bool alive(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

Status ensure_dir(const std::string& d) {
  if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) return fail(d, ": ", std::strerror(errno));
  return ok_status();
}

}  // namespace

std::string run_dir() {
  if (const char* d = std::getenv("EMBER_RUN_DIR"); d && *d) return d;
  return "/dev/shm/ember-" + std::to_string(getuid());
}

std::string pin_dir() { return run_dir() + "/pins"; }

Status ensure_pin_dir() {
  if (auto st = ensure_dir(run_dir()); !st) return st;
  return ensure_dir(pin_dir());
}

Status publish(const std::vector<PublishedMap>& maps, const std::vector<PublishedProg>& progs) {
  if (auto st = ensure_dir(run_dir()); !st) return st;
  std::string tmp = own_file() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) return fail(tmp, ": cannot write");
    for (const auto& m : maps) f << "map " << m.id << ' ' << m.fd << ' ' << m.type << ' ' << m.name << '\n';
    for (const auto& p : progs)
      f << "prog " << p.id << ' ' << p.type << ' ' << p.name << ' ' << p.section << ' ' << p.xlated_bytes
        << ' ' << p.jited_bytes << '\n';
  }
  if (rename(tmp.c_str(), own_file().c_str()) != 0) return fail(own_file(), ": ", std::strerror(errno));
  return ok_status();
}

void unpublish() { unlink(own_file().c_str()); }

void read_published(std::vector<PublishedMap>* maps, std::vector<PublishedProg>* progs) {
  DIR* d = opendir(run_dir().c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() < 9 || n.substr(n.size() - 8) != ".objects") continue;
    pid_t pid = static_cast<pid_t>(std::atol(n.c_str()));
    std::string path = run_dir() + "/" + n;
    if (pid <= 0 || !alive(pid)) {
      unlink(path.c_str());  // left behind by a process that died
      continue;
    }
    std::ifstream f(path);
    std::string line;
    while (std::getline(f, line)) {
      std::istringstream in(line);
      std::string kind;
      in >> kind;
      if (kind == "map") {
        PublishedMap m{pid, 0, -1, "", ""};
        if (in >> m.id >> m.fd >> m.type >> m.name && maps) maps->push_back(m);
      } else if (kind == "prog") {
        PublishedProg p{pid, 0, "", "", ""};
        if (!(in >> p.id >> p.type >> p.name >> p.section) || !progs) continue;
        in >> p.xlated_bytes >> p.jited_bytes;  // absent in files of older versions
        progs->push_back(p);
      }
    }
  }
  closedir(d);
}

Result<MapPtr> open_published(const PublishedMap& m) {
  std::string path = "/proc/" + std::to_string(m.pid) + "/fd/" + std::to_string(m.fd);
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return fail("map ", m.id, " of process ", m.pid, ": ", path, ": ", std::strerror(errno));
  auto map = Map::open(fd);
  close(fd);
  if (!map) return map.error();
  (*map)->set_id(m.id);
  return map;
}

}  // namespace ember
