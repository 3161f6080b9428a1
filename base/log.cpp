#include "base/log.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace tlbsim::log {
namespace {
struct Registry {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<spdlog::logger>> loggers;
  std::vector<std::string> debug;
  bool quiet = false;
  std::shared_ptr<spdlog::sinks::sink> sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
};
Registry& reg() {
  static Registry r;
  return r;
}
spdlog::level::level_enum level_for(const Registry& r, const std::string& cat) {
  bool dbg = std::find(r.debug.begin(), r.debug.end(), cat) != r.debug.end() ||
             std::find(r.debug.begin(), r.debug.end(), "all") != r.debug.end();
  if (dbg) return spdlog::level::debug;
  return r.quiet ? spdlog::level::warn : spdlog::level::info;
}
}  // namespace

std::shared_ptr<spdlog::logger> get(const std::string& category) {
  auto& r = reg();
  std::lock_guard lock(r.mu);
  auto it = r.loggers.find(category);
  if (it != r.loggers.end()) return it->second;
  auto l = std::make_shared<spdlog::logger>(category, r.sink);
  l->set_pattern("[%n] %^%l%$: %v");
  l->set_level(level_for(r, category));
  r.loggers.emplace(category, l);
  return l;
}

void enable_debug(const std::vector<std::string>& categories) {
  auto& r = reg();
  std::lock_guard lock(r.mu);
  r.debug = categories;
  for (auto& [name, l] : r.loggers) l->set_level(level_for(r, name));
}

void set_quiet(bool quiet) {
  auto& r = reg();
  std::lock_guard lock(r.mu);
  r.quiet = quiet;
  for (auto& [name, l] : r.loggers) l->set_level(level_for(r, name));
}

const std::vector<Category>& debug_categories() {
  static const std::vector<Category> v = {
      {"syscall", "system calls: mmap, munmap, mprotect, madvise, pin, ... with their duration"},
      {"fault", "page faults handled by the kernel"},
      {"flush", "TLB flush requests: x86 flush_tlb_mm_range (range or full, IPI targets), arm64 "
                "DSB ISH after its broadcast TLBIs"},
      {"shootdown", "x86 flush IPIs sent and the wait for their acks"},
      {"ipi", "flush IPIs handled on the receiving CPU"},
      {"tlbi", "arm64 broadcast TLBIs and their DSB ISH wait"},
      {"sched", "context switches: a task starts running on a CPU"},
      {"barrier", "barrier waits of the workload"},
      {"kernel", "kernel work outside system calls (reclaim)"},
      {"region", "measurement regions"},
      {"coherence", "stale-TLB and permission violations the checker finds"},
      {"all", "every category above"}};
  return v;
}

std::vector<std::string> categories() {
  auto& r = reg();
  std::lock_guard lock(r.mu);
  std::vector<std::string> v;
  for (auto& [name, l] : r.loggers) v.push_back(name);
  return v;
}

}  // namespace tlbsim::log
