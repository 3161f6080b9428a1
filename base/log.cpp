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

std::vector<std::string> categories() {
  auto& r = reg();
  std::lock_guard lock(r.mu);
  std::vector<std::string> v;
  for (auto& [name, l] : r.loggers) v.push_back(name);
  return v;
}

}  // namespace tlbsim::log
