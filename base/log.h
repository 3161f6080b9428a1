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

/// Categories created so far (for --debug help).
std::vector<std::string> categories();

}  // namespace tlbsim::log
