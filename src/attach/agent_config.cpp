#include "attach/agent_config.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "runtime/registry.hpp"

namespace ember::attach {

std::string AgentConfig::serialize() const {
  std::string s = "object " + object_path + "\n";
  for (const auto& p : probes) s += "probe " + p + "\n";
  s += std::string("follow_forks ") + (follow_forks ? "1" : "0") + "\n";
  s += "socket " + socket_path + "\n";
  return s;
}

Result<AgentConfig> AgentConfig::parse(std::string_view text) {
  AgentConfig c;
  size_t lineno = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++lineno;
    if (line.empty()) continue;
    AgentLine l = split_agent_line(line);
    if (l.word == "object")
      c.object_path = l.rest;
    else if (l.word == "probe")
      c.probes.push_back(l.rest);
    else if (l.word == "follow_forks" && (l.rest == "0" || l.rest == "1"))
      c.follow_forks = l.rest == "1";
    else if (l.word == "socket")
      c.socket_path = l.rest;
    else
      return fail("agent config line ", lineno, ": cannot read '", line, "'");
  }
  if (c.object_path.empty()) return fail("agent config: no object");
  if (c.socket_path.empty()) return fail("agent config: no controller socket");
  return c;
}

Result<AgentConfig> AgentConfig::read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return fail("agent config ", path, ": ", std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  auto c = parse(ss.str());
  if (!c) return fail(path, ": ", c.error().message);
  return c;
}

Status AgentConfig::write_file(const std::string& path) const {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail("cannot write ", tmp, ": ", std::strerror(errno));
  std::string s = serialize();
  bool ok = write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return fail("cannot write ", path, ": ", std::strerror(errno));
  }
  return ok_status();
}

std::string inject_config_path(pid_t pid) { return run_dir() + "/agent-" + std::to_string(pid) + ".conf"; }

AgentLine split_agent_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return {std::string(line), ""};
  return {std::string(line.substr(0, sp)), std::string(line.substr(sp + 1))};
}

std::string one_line(std::string_view text) {
  std::string s(text);
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace ember::attach
