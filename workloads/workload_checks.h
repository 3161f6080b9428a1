// Whole-workload checks of the reader (workload_reader.cpp). Internal.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "workloads/op.h"
#include "workloads/substitute.h"

namespace tlbsim::workload::detail {

/// Throws InputError when a barrier is reached more often by one participant (a
/// thread or a forked child) than by another that names it: the last uses would
/// wait forever. Uses after an `exit` do not count.
void check_barriers(const Workload& w, const std::set<std::string>& names);

/// The mmaps of each thread with a literal name and size, outside forked children:
/// name → (size, thread index), the size the largest its own thread mremaps it to.
/// Looked at only for names the reading order has not met yet.
std::map<std::string, std::pair<uint64_t, size_t>> thread_mmaps(const std::vector<Expanded>& ts);

}  // namespace tlbsim::workload::detail
