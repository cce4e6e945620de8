#include "cli/trace_session.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "attach/agent_config.hpp"

namespace ember::cli {

Result<TraceServer> TraceServer::listen_at(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return fail("socket path too long: ", path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail("socket: ", std::strerror(errno));
  unlink(path.c_str());
  mode_t old = umask(0077);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  umask(old);
  if (rc != 0 || listen(fd, 16) != 0) {
    std::string e = std::strerror(errno);
    close(fd);
    return fail("cannot listen at ", path, ": ", e);
  }
  return TraceServer(fd, path);
}

TraceServer::TraceServer(TraceServer&& o) noexcept
    : fd_(o.fd_), path_(std::move(o.path_)), agents_(std::move(o.agents_)) {
  o.fd_ = -1;
  o.agents_.clear();
}

TraceServer::~TraceServer() {
  for (auto& a : agents_) close(a.fd);
  if (fd_ >= 0) {
    close(fd_);
    unlink(path_.c_str());
  }
}

bool TraceServer::send(AgentConn& a, const std::string& line) {
  std::string s = line + "\n";
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::send(a.fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// False once the connection has ended.
bool TraceServer::read_agent(AgentConn& a,
                             const std::function<void(AgentConn&, const std::string&)>& on_line) {
  char buf[4096];
  while (true) {
    ssize_t n = recv(a.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) return false;
    a.buf.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = a.buf.find('\n')) != std::string::npos) {
      std::string line = a.buf.substr(0, nl);
      a.buf.erase(0, nl + 1);
      auto l = attach::split_agent_line(line);
      if (l.word == "hello") {
        a.pid = static_cast<pid_t>(std::atol(l.rest.c_str()));
        if (auto sp = l.rest.find(' '); sp != std::string::npos)
          a.parent = static_cast<pid_t>(std::atol(l.rest.c_str() + sp + 1));
      } else if (l.word == "ready") {
        a.ready = true;
        a.attached = std::strtoul(l.rest.c_str(), nullptr, 10);
      } else if (l.word == "detached") {
        a.detached = true;
      }
      a.lines.push_back(line);
      on_line(a, line.empty() ? " " : line);
    }
  }
}

void TraceServer::poll(int timeout_ms, const std::function<void(AgentConn&, const std::string&)>& on_line) {
  std::vector<pollfd> fds{{fd_, POLLIN, 0}};
  for (auto& a : agents_) fds.push_back({a.fd, POLLIN, 0});
  int r = ::poll(fds.data(), fds.size(), timeout_ms);
  if (r <= 0) return;
  if (fds[0].revents & POLLIN) {
    int c;
    while ((c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC)) >= 0) agents_.push_back({.fd = c});
  }
  for (size_t i = 0; i < agents_.size();) {
    bool alive = read_agent(agents_[i], on_line);
    if (alive) {
      ++i;
      continue;
    }
    on_line(agents_[i], "");
    close(agents_[i].fd);
    agents_.erase(agents_.begin() + static_cast<ptrdiff_t>(i));
  }
}

}  // namespace ember::cli
