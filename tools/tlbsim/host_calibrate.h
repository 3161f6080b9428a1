// `tlbsim calibrate` and `tlbsim validate-host`: the simulator against the host
// harness's measurements (tools/hostbench).
//
// calibrate fits the cost table — the software cost of each kernel primitive
// (machine.costs.*) and the x86 invalidation/IPI costs (machine.x86.*) — on a
// declared calibration subset only: populate, munmap and fork at 4 KiB, 64 KiB and
// 2 MiB (PMD) folios, and the shootdown family at one page. The fit is a
// non-negative least squares on relative errors, regularised towards the preset's
// own (cited or estimated) values: minimise
//     Σ_points ((T_sim(c) − T_real) / T_real)²  +  λ Σ_params ((c − c_prior) / c_prior)²
// over c ≥ 0, with T_sim linear in c (kernel primitives: their counts; x86
// parameters: finite differences of the shootdown replays). It changes costs only,
// never behaviour or counts. validate-host compares every point, hold-out included.
#pragma once

#include <filesystem>
#include <string>

namespace tlbsim {

struct HostCommandOptions {
  std::filesystem::path measurements;
  std::string machine;          // preset name or file
  std::string kernel = "linux-6.18";
  std::filesystem::path out;    // calibrate: the preset file to write
  std::string format = "text";  // validate-host: text, markdown, csv
  std::filesystem::path plot;   // validate-host: figure (PNG + SVG) base name
  double fail_above = -1;       // validate-host: exit 1 above this hold-out ratio error (%)
  double lambda = 0.05;         // calibrate: weight of the prior
  unsigned jobs = 1;
  std::string self;             // the tlbsim executable
  std::filesystem::path work;   // scratch directory (default: a temporary one)
  bool quiet = false;
};

int run_calibrate(const HostCommandOptions& o);
int run_validate_host(const HostCommandOptions& o);

}  // namespace tlbsim
