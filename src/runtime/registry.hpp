// Where running Ember runtimes publish their maps and programs, so that
// another process (the `ember map` and `ember prog` commands, a tracer's
// controller) can find and map them: the user-space stand-in for the
// kernel's map and program ids and for bpffs pins.
//
// A directory per user ($EMBER_RUN_DIR, default /dev/shm/ember-UID) holds
// one file per publishing process, PID.objects, one line per object:
//   map ID FD TYPE NAME        (the segment is /proc/PID/fd/FD)
//   prog ID TYPE NAME SECTION XLATED JITED   (code sizes in bytes; JITED 0:
//                                            no JIT code)
// and pins/NAME, the segments of maps pinned by name.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "ember/maps.hpp"
#include "ember/result.hpp"

namespace ember {

std::string run_dir();
std::string pin_dir();
Status ensure_pin_dir();

struct PublishedMap {
  pid_t pid;
  uint32_t id;
  int fd;  // in process `pid`
  std::string type, name;
};

struct PublishedProg {
  pid_t pid;
  uint32_t id;
  std::string type, name, section;
  uint64_t xlated_bytes = 0;  // its eBPF code (bpftool's "xlated")
  uint64_t jited_bytes = 0;   // its JIT code; 0: it runs in the interpreter
};

// Rewrites this process's file (atomically: a temporary file renamed).
Status publish(const std::vector<PublishedMap>& maps, const std::vector<PublishedProg>& progs);
void unpublish();

// What live processes have published; files of dead processes are removed.
void read_published(std::vector<PublishedMap>* maps, std::vector<PublishedProg>* progs);

// Maps another process's map through /proc/PID/fd/FD.
Result<MapPtr> open_published(const PublishedMap& m);

}  // namespace ember
