// The controller's side of `ember trace`: the unix socket agents connect
// to, one connection per agent (the target, and forked children that
// follow), the lines they report, and "go" / "detach" to them.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "ember/result.hpp"

namespace ember::cli {

struct AgentConn {
  int fd = -1;
  pid_t pid = 0, parent = 0;
  std::string buf;  // bytes of an incomplete line
  bool ready = false, detached = false;
  bool detach_sent = false;        // told to detach (Ctrl-C while injecting)
  size_t attached = 0;             // "ready N"
  std::vector<std::string> lines;  // everything it reported, for the caller
};

class TraceServer {
 public:
  // Listens at `path` (replaced if a stale socket is there; mode 0600).
  static Result<TraceServer> listen_at(const std::string& path);
  TraceServer(TraceServer&&) noexcept;
  TraceServer& operator=(TraceServer&&) = delete;
  ~TraceServer();

  const std::string& path() const { return path_; }
  // Accepts new agents and reads what agents said, waiting up to
  // timeout_ms for something to happen. Each complete line goes to
  // `on_line(agent, line)`; an agent whose connection ended gets
  // on_line(agent, "") once and is dropped.
  void poll(int timeout_ms, const std::function<void(AgentConn&, const std::string&)>& on_line);
  std::vector<AgentConn>& agents() { return agents_; }
  static bool send(AgentConn& a, const std::string& line);

 private:
  TraceServer(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  bool read_agent(AgentConn& a, const std::function<void(AgentConn&, const std::string&)>& on_line);
  int fd_ = -1;
  std::string path_;
  std::vector<AgentConn> agents_;
};

}  // namespace ember::cli
