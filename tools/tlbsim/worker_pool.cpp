#include "tools/tlbsim/worker_pool.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace tlbsim {

void run_workers(const std::vector<WorkerJob>& jobs, const std::vector<size_t>& order,
                 unsigned parallel, const std::function<void(size_t, const WorkerResult&)>& done) {
  using Clock = std::chrono::steady_clock;
  std::map<pid_t, std::pair<size_t, Clock::time_point>> running;
  const pid_t parent = getpid();
  size_t next = 0;
  auto launch = [&](size_t idx) {
    const WorkerJob& job = jobs[idx];
    std::vector<std::string> args = job.argv;
    const std::string log = job.log.string();
    const pid_t pid = fork();
    if (pid == 0) {
      // Die with the parent: an interrupted sweep leaves no orphan finishing points.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(127);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        close(fd);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    if (pid < 0) throw std::runtime_error("fork failed");
    running[pid] = {idx, Clock::now()};
  };
  while (next < order.size() || !running.empty()) {
    while (next < order.size() && running.size() < std::max(1u, parallel)) launch(order[next++]);
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) break;
    auto it = running.find(pid);
    if (it == running.end()) continue;
    WorkerResult r;
    r.seconds = std::chrono::duration<double>(Clock::now() - it->second.second).count();
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status)
                  : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                        : 1;
    const size_t idx = it->second.first;
    running.erase(it);
    done(idx, r);
  }
}

std::string read_log(const std::filesystem::path& log) {
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace tlbsim
