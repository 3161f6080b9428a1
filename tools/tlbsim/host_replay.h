// Replays the host harness's experiments in tlbsim: for each measured point
// (folio family: folio configuration × op; shootdown family: op × pages × remote ×
// layout) an experiment that does what tools/hostbench does, on the given machine
// preset and kernel profile, each scenario in its own worker process. The result
// of a point is the simulated time per call and the counts a comparison needs.
#pragma once

#include <array>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/params.h"
#include "mm/exec_context.h"
#include "tools/tlbsim/host_measurements.h"

namespace tlbsim {

/// The simulated counterpart of one measured point.
struct SimPoint {
  double cycles = 0;  // per call
  double ns = 0;      // per call (cycles / machine.freq_ghz)
  double faults = 0, split_pmd = 0, deferred_split = 0, ipis_per_call = 0;
  double invlpg = 0, full_flushes = 0;  // local flushes by the calling CPU, per call
  std::array<double, static_cast<size_t>(mm::KOp::kCount)> kops{};  // per call
  uint64_t violations = 0;
};

struct ReplayOptions {
  std::string machine;  // preset name or preset file
  std::string kernel = "linux-6.18";
  std::vector<std::string> sets;  // extra overrides for every experiment
  std::filesystem::path work;     // experiments and their results go here
  std::string self;               // the tlbsim executable
  unsigned jobs = 1;
  bool quiet = false;
};

/// Which points to replay.
struct ReplaySelection {
  std::set<std::string> folios;  // folio configurations ("4K", "2M-pte", ...)
  std::set<std::string> ops;     // folio-family ops (empty: all)
  std::set<unsigned> shootdown_pages;  // shootdown points with these page counts
};

/// Point keys: "folio/<config>/<op>" and "shootdown/<op>/<pages>/<remote>/<layout>".
std::string folio_key(const std::string& folio, const std::string& op);
std::string shootdown_key(const HostShootdown& s);

/// Runs the selected points; returns them by key. Throws InputError for a preset or
/// profile that does not load, std::runtime_error when a worker fails otherwise.
std::map<std::string, SimPoint> replay_host(const HostMeasurements& m, const ReplaySelection& sel,
                                            const ReplayOptions& o);

}  // namespace tlbsim
