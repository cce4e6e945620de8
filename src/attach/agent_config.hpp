// What `ember trace` tells the agent it starts inside a traced process, and
// the lines they exchange over the controller's unix socket.
//
// Config file (text, one setting a line; spawn mode: the file named by
// $EMBER_AGENT_CONFIG; inject mode: run_dir()/agent-PID.conf):
//   object /abs/path/prog.bpf.o
//   probe uprobe:/bin/bash:readline=prog      (an -e spec; repeated)
//   follow_forks 0|1
//   socket /dev/shm/ember-1000/trace-4242.sock
//
// Protocol, one line a message:
//   agent -> controller: "hello PID PARENT" (PARENT 0, or the pid a
//     follow-forks child forked from), "probe PROG ADDR METHOD" per
//     attached probe, "error TEXT" per probe that failed, then "ready N"
//     (N probes attached; its maps are published) or "fatal TEXT";
//     after a detach: "stats PROG HITS ERRORS MISSED [FIRST_ERROR]" per
//     probe and "detached".
//   controller -> agent: "go" (after "ready": the maps are open, the
//     target may run), "detach".
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "ember/result.hpp"

namespace ember::attach {

struct AgentConfig {
  std::string object_path;
  std::vector<std::string> probes;  // -e specs
  bool follow_forks = false;
  std::string socket_path;

  std::string serialize() const;
  static Result<AgentConfig> parse(std::string_view text);
  static Result<AgentConfig> read_file(const std::string& path);
  Status write_file(const std::string& path) const;  // mode 0600, replaced atomically
};

// Where inject mode's agent finds its config: run_dir()/agent-PID.conf.
std::string inject_config_path(pid_t pid);
// The environment variable spawn mode's agent reads its config path from.
inline constexpr const char* kAgentConfigEnv = "EMBER_AGENT_CONFIG";

// One protocol line split into its command word and the rest ("" if none).
struct AgentLine {
  std::string word, rest;
};
AgentLine split_agent_line(std::string_view line);
// Newlines in text become spaces, so that one message stays one line.
std::string one_line(std::string_view text);

}  // namespace ember::attach
