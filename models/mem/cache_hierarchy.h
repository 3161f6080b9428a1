// The memory hierarchy every reference goes through: per-core L1D and L2, one LLC per
// socket, DRAM; tag-only (models/mem/tag_cache.h) and allocation-free. User data
// accesses, page-walker reads and the kernel's metadata references (struct page
// lines, reported by mm/ through ExecContext) all use it, so data pollutes the
// caches the walker and the kernel use, as on real hardware.
//
// A small stream prefetcher per core (prefetch_streams): a demand miss of L2 that
// continues an ascending run of lines inside one prefetch_boundary window costs
// stream_line_cycles (the line arrived ahead of the demand, at streaming
// bandwidth) instead of the LLC/DRAM latency. Real L2 prefetchers stop at 4 KiB
// page boundaries; so does this one by default.
//
// Not modelled: coherence between private caches (a line written by one core stays
// valid in another's L1/L2), write-back traffic, bandwidth contention between cores.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/mem/tag_cache.h"

namespace tlbsim {

struct CacheParams;

/// Where a reference was served.
enum class MemLevel : uint8_t { kL1, kL2, kLlc, kStream, kDram, kCount };
inline constexpr std::array<const char*, static_cast<size_t>(MemLevel::kCount)> kMemLevelNames = {
    "l1", "l2", "llc", "stream", "dram"};

/// Who made the reference (statistics only).
enum class MemSource : uint8_t { kUser, kWalk, kKernel, kCount };
inline constexpr std::array<const char*, static_cast<size_t>(MemSource::kCount)> kMemSourceNames = {
    "user", "walk", "kernel"};

/// First physical address of the struct page array (vmemmap) in the hierarchy's
/// address space: struct pages are 64-byte lines placed after the machine's memory.
/// `memory_bytes` rounded up to 1 GiB keeps the mapping stable across small presets.
inline uint64_t vmemmap_base(uint64_t memory_bytes) {
  return (memory_bytes + (1ull << 30) - 1) & ~((1ull << 30) - 1);
}

class CacheHierarchy {
 public:
  /// `socket_of[cpu]` names each CPU's socket (its LLC).
  explicit CacheHierarchy(const CacheParams& p, const std::vector<unsigned>& socket_of);

  struct Result {
    uint32_t cycles;
    MemLevel level;
  };
  /// One reference by `cpu` to the line holding physical address `pa`.
  [[gnu::always_inline]] Result access(unsigned cpu, uint64_t pa, MemSource src) {
    PerCpu& c = m_cpu[cpu];
    const uint64_t line = pa >> 6;
    Result r;
    if (c.l1.access(line)) {
      r = {m_l1_cycles, MemLevel::kL1};
    } else if (c.l2.access(line)) {
      r = {m_l2_cycles, MemLevel::kL2};
    } else {
      r = beyond_l2(c, line);
    }
    ++c.counts[static_cast<size_t>(src)][static_cast<size_t>(r.level)];
    return r;
  }
  /// The kernel wrote a whole 4 KiB page (zeroing, copy destination): its lines are
  /// now in `cpu`'s caches. Returns the lines that were not cached before.
  uint32_t fill_page(unsigned cpu, uint64_t page_pa);
  /// Forgets every cached line (tests).
  void clear();

  uint32_t l1_cycles() const { return m_l1_cycles; }
  uint32_t dram_cycles() const { return m_dram_cycles; }
  /// References served at each level, for one CPU and source.
  uint64_t count(unsigned cpu, MemSource src, MemLevel level) const {
    return *counter(cpu, src, level);
  }
  /// The counter itself, for statistics registration (CounterRef).
  const uint64_t* counter(unsigned cpu, MemSource src, MemLevel level) const {
    return &m_cpu[cpu].counts[static_cast<size_t>(src)][static_cast<size_t>(level)];
  }

 private:
  struct Stream {
    uint64_t next = ~0ull;  // the line that continues the run
    uint64_t used = 0;      // LRU stamp
  };
  struct PerCpu {
    TagCache l1, l2;
    TagCache* llc = nullptr;
    std::vector<Stream> streams;
    uint64_t stream_clock = 0;
    std::array<std::array<uint64_t, static_cast<size_t>(MemLevel::kCount)>,
               static_cast<size_t>(MemSource::kCount)>
        counts{};
  };
  Result beyond_l2(PerCpu& c, uint64_t line);

  std::vector<PerCpu> m_cpu;
  std::vector<std::unique_ptr<TagCache>> m_llc;  // per socket
  uint32_t m_l1_cycles, m_l2_cycles, m_llc_cycles, m_dram_cycles, m_stream_cycles;
  unsigned m_window_shift;  // log2(prefetch_boundary / 64)
};

}  // namespace tlbsim
