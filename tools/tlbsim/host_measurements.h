// The host harness's measurements (tools/hostbench, format "tlbsim-hostbench"
// version 1; docs/hostbench.md), as the calibration and validation commands use
// them. Loading checks the format field by field: a file that is not the harness's,
// is truncated, or lacks what a command needs is an InputError naming the file and
// the JSON pointer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/params.h"

namespace tlbsim {

/// One measured operation of the folio family (over all repeats).
struct HostOp {
  double median_ns = 0, min_ns = 0;
  uint64_t calls = 1;              // system calls per sample (512 for the *_4k ops)
  double minflt = 0;               // minor faults (median)
  std::map<std::string, int64_t> vmstat;  // /proc/vmstat deltas (first repeat)
  std::map<std::string, int64_t> mthp;    // "64kB/anon_fault_alloc" deltas
};

/// One folio configuration: "4K", "16K", ..., "2M", "2M-pte".
struct HostFolio {
  std::string name;
  uint64_t folio_bytes = 4096;
  bool pmd_mapped = false;
  bool check_ok = false;
  std::map<std::string, HostOp> ops;  // by op name
};

/// One point of the two-thread shootdown family.
struct HostShootdown {
  std::string op;      // munmap, mprotect_ro, mprotect_rw, dontneed
  unsigned pages = 1;
  std::string remote;  // running, lazy
  std::string layout;  // shared_table, alone, split
  unsigned iterations = 0;
  double median_ns = 0, min_ns = 0;
  double ipis_per_call = 0;
  /// "op/pages/remote/layout", e.g. "munmap/1/lazy/alone".
  std::string key() const {
    return op + "/" + std::to_string(pages) + "/" + remote + "/" + layout;
  }
};

/// The primitives family: user-space measurements of the hardware (medians, ns).
/// Missing figures are 0.
struct HostPrimitives {
  bool present = false;
  std::map<std::string, double> chase_ns;  // dependent loads by buffer size ("16KiB", ..., "1GiB")
  double chase_4k_pages_ns = 0;            // one load per 4 KiB page, random pages: TLB miss + walk
  double independent_read_ns = 0;          // independent random loads over 1 GiB
  double seq_read_line_ns = 0;             // sequential lines
  double page_stride_write_ns = 0;         // one write per page, THP-backed
  double clear_page_cold_ns = 0, copy_page_cold_ns = 0;
  double syscall_ns = 0, pagefault_ns = 0;
  double atomic_ns = 0, xchg_ns = 0;  // dependent locked RMWs on an L1 line
};

struct HostMeasurements {
  std::filesystem::path file;
  std::string sha256;        // of the file's bytes
  Json machine;              // the harness's machine description
  std::string created;
  uint64_t size_bytes = 0;
  std::vector<HostFolio> folios;  // in file order
  std::vector<HostShootdown> shootdown;
  HostPrimitives primitives;
  double host_mhz = 0;  // machine.mhz

  const HostFolio* folio(const std::string& name) const;
  const HostShootdown* find_shootdown(const std::string& key) const;
};

/// The op names of the folio family, in the harness's order.
const std::vector<std::string>& host_folio_ops();

/// The declared calibration subset (docs/hostbench.md): populate, munmap and fork at
/// 4K, 64K and 2M folios, and the shootdown family at one page.
const std::set<std::string>& calibration_folios();
const std::set<std::string>& calibration_ops();
inline constexpr unsigned kCalibrationShootdownPages = 1;
/// Whether a point key ("folio/<cfg>/<op>", "shootdown/<op>/<pages>/...") is in it.
bool in_calibration_subset(const std::string& key);
/// The measured time of a point in ns per call (per system call for the *_4k ops),
/// or -1 when the file lacks it.
double measured_ns(const HostMeasurements& m, const std::string& key);

/// Loads and checks a measurement file; InputError (exit 2) with file and pointer.
HostMeasurements load_host_measurements(const std::filesystem::path& file);

/// SHA-256 of a file's bytes, in hex.
std::string sha256_of_file(const std::filesystem::path& file);

}  // namespace tlbsim
