// Loggers per component (spdlog). Each component asks for its category once at
// construction and keeps the pointer; hot paths guard with `should_log` so a
// disabled category costs one predictable branch.
//
// Categories are enabled with `tlbsim run --debug tlb,walker` (or "all").
#pragma once

#include <memory>
#include <spdlog/spdlog.h>
#include <string>
#include <vector>

namespace tlbsim::log {

/// The logger for `category` ("tlb", "walker", "fault", "flush", ...); created on
/// first use at the current default level.
std::shared_ptr<spdlog::logger> get(const std::string& category);

/// Enables debug output for the given categories ("all" for every one).
void enable_debug(const std::vector<std::string>& categories);

/// Quiet mode: warnings and errors only.
void set_quiet(bool quiet);

/// Categories created so far.
std::vector<std::string> categories();

/// The categories `tlbsim run --debug` accepts, with what each prints: the events
/// of the timeline (--trace) of that category, as they happen, plus "coherence"
/// (each violation the checker finds) and "all".
struct Category {
  const char* name;
  const char* what;
};
const std::vector<Category>& debug_categories();

}  // namespace tlbsim::log
