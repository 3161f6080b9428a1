// The workload op vocabulary: what a simulated thread does. Plain data, produced
// by the JSON reader (workload_reader.h) and the generators, replayed by the CPU
// models. Every op the language names exists here; an op that a later layer cannot
// execute yet is rejected at validation with "not supported yet", never ignored.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tlbsim::workload {

enum class OpKind : uint8_t {
  kMmap,
  kTouch,
  kMunmap,
  kMprotect,
  kMadvise,
  kMremap,
  kFork,
  kExit,
  kWait,
  kBarrier,
  kMlock,
  kMunlock,
  kMovePages,
  kUffdioMove,
  kReclaim,
  kSleep,
  kRegion,
  kMigrate,
  kReplay,
  kPin,
  kUnpin,
  kPost,   // sem_post() of a named semaphore
  kAwait,  // sem_wait(): until the semaphore is positive, then take one
  kRepeat,  // expanded by the reader: never executed
};

enum class AccessKind : uint8_t { kRead, kWrite, kExec };
enum class Pattern : uint8_t { kSequential, kRandom, kStrided, kZipf };
enum class ThpHint : uint8_t { kDefault, kHugePage, kNoHugePage };

/// One run of a replayed trace: `count` accesses of `kind` to one page of a mapping.
struct TraceEntry {
  uint32_t mapping = 0;  // index into Op::mappings
  uint32_t count = 1;
  uint64_t page = 0;     // page offset inside the mapping
  AccessKind kind = AccessKind::kRead;
};

struct Op {
  OpKind kind = OpKind::kSleep;
  std::string pointer;  // JSON pointer of the op (for run-time messages)

  // mmap / munmap / touch / mprotect / madvise: the mapping (by name) and a window.
  std::string mapping;
  uint64_t size = 0;    // mmap: length
  uint64_t offset = 0;  // window start inside the mapping
  uint64_t length = 0;  // window length (0 = to the end of the mapping)
  bool prot_read = true, prot_write = true, prot_exec = false;
  bool shared = false;
  bool populate = false;
  ThpHint thp = ThpHint::kDefault;
  uint64_t align = 0;

  // touch
  AccessKind access = AccessKind::kRead;
  Pattern pattern = Pattern::kSequential;
  uint64_t stride = 4096;
  uint64_t count = 0;   // accesses per repetition (0 = one per page of the window)
  uint64_t repeat = 1;
  uint64_t think_cycles = 0;
  uint64_t seed = 1;
  double zipf_theta = 0.99;

  // barrier / region: name; region: body
  std::string name;
  bool spin = false;  // barrier, sleep, await: busy-wait in user mode instead of sleeping
  std::vector<Op> body;

  // sleep
  uint64_t cycles = 0;

  // migrate: the CPU to move to; fork: the CPU the child is pinned to (−1: the
  // scheduler places it)
  int cpu = -1;

  // madvise
  std::string advice;

  // reclaim: pages to reclaim, and/or reclaim until this many bytes are free
  uint64_t pages = 0;
  uint64_t target_free = 0;

  // mmap at a fixed address (MAP_FIXED), e.g. for imported traces; mremap: the
  // target of MREMAP_FIXED
  uint64_t addr = 0;
  bool fixed = false;
  // mremap: `size` is the new length; MREMAP_MAYMOVE
  bool maymove = true;

  // replay: `trace_runs` runs of the trace file from byte `trace_start` over the
  // named mappings, read as a stream (workloads/trace_file.h)
  std::vector<std::string> mappings;
  std::string trace_file;
  uint64_t trace_start = 0;
  uint64_t trace_runs = 0;
};

struct Thread {
  std::string name;
  int cpu = -1;  // the CPU it is pinned to, or −1: placed (and moved) by the scheduler
  std::vector<Op> ops;
};

struct Process {
  std::string name;
  std::vector<Thread> threads;
};

struct Workload {
  std::string name;
  std::vector<Process> processes;
};

const char* op_name(OpKind k);

}  // namespace tlbsim::workload
