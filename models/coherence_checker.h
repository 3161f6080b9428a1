// TLB coherence checker (DESIGN §5). Every frame carries a generation that
// advances whenever the frame returns to the allocator; every TLB fill remembers the
// generation of its frame. A TLB hit whose remembered generation differs from the
// frame's current one used a translation to a freed (possibly reused) frame: a
// stale-TLB violation, reported with the CPU, the address, the frame and the kernel
// path that freed it. Walk-cache entries are checked the same way (a walk that
// continues from a cached pointer to a freed page table), and the arm64 model asks
// at every contpte break-before-make whether a TLB still holds the block.
//
// At the free: every TLB and walk-cache entry the hardware may still use is counted
// against the frames it translates to (or, for a walk-cache entry, the table it points
// to), from its fill until it is dropped — or until the translation is retired: its
// CPU will flush it before using it again, as the architecture's TranslationLiveness
// says (x86: a PCID whose tlb_gen fell behind the mm's, or an mm gone; arm64: the ASID
// of an mm being torn down, whose leaves Linux never flushes). A frame or page table
// freed with a positive count is reported at that moment, deterministically: the
// kernel freed it before every CPU that may still reach it had flushed — including a
// lazy CPU's paging-structure caches, which hardware may walk speculatively.
//
// Permissions: a frame that stays allocated can still be reached through a stale
// entry (fork's write protection, mprotect, a COW replacement, an unmap of a page
// another mm keeps). With permission checking on, every TLB hit that lets an access
// through is compared with the current page-table entry, read from the simulated
// frames as the walker would: not present, another frame, a store through a
// read-only PTE or a fetch through a no-exec one is a permission violation — unless
// a kernel call that may still be changing that mapping has not returned yet (the
// task's own mm, or a reclaim / migration / split anywhere): Linux lets such a call
// flush at its end, so a hit in the window is hardware-allowed staleness and only
// counted. A TLB entry granting *less* than its PTE (x86 does not flush permission
// upgrades; a spurious fault re-walks) is never a violation.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "mm/pte.h"

#include "base/stats.h"
#include "mm/phys_mem.h"
#include "models/cpu/core_mmu.h"
#include "models/tlb/residency.h"
#include "models/tlb/tlb.h"
#include "models/tlb/walk_cache.h"

namespace tlbsim {

struct StaleTlbViolation {
  unsigned cpu;
  uint64_t va;
  uint64_t pfn;
  std::string freed_by;
  StaleKind kind = StaleKind::kTlb;
};

/// What the permission check needs to know about the kernel side (models/system.cpp).
class KernelActivity {
 public:
  virtual ~KernelActivity() = default;
  /// Whether a kernel call that may still be changing the translations used by the
  /// task on `cpu` is in progress (the task's mm, or an rmap-wide unmap).
  virtual bool call_in_flight(unsigned cpu) = 0;
  /// Who accessed and what the kernel did last: "task t0 (pid 1) on cpu 0; last
  /// kernel call on its mm: mprotect by t0".
  virtual std::string describe(unsigned cpu) = 0;
};

/// Thrown at the first violation when machine.coherence_fail_fast is set: a result of
/// the kernel under test, not an internal error.
class CoherenceStop : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Whether a CPU may still use a translation it caches under a tag (x86 PCID, arm64
/// ASID) without flushing it first; supplied by each architecture's system MMU.
class TranslationLiveness {
 public:
  virtual ~TranslationLiveness() = default;
  /// `walk`: a paging-structure (walk-cache) entry, which hardware may also use for
  /// speculative walks while the tag is loaded; else a leaf TLB entry.
  virtual bool may_use(unsigned cpu, uint16_t tag, bool walk) const = 0;
};

class CoherenceChecker final : public mm::FrameObserver, public Residency {
 public:
  CoherenceChecker(uint64_t nr_frames, bool fail_fast, StatGroup* stats_parent)
      : m_gen(nr_frames, 0), m_freed_by(nr_frames, 0), m_what{nullptr}, m_fail_fast(fail_fast),
        m_stats(stats_parent, "coherence") {
    m_cached[0].assign(nr_frames, 0);
  }

  const uint32_t* generations() const { return m_gen.data(); }

  void on_frames_freed(Pfn pfn, uint64_t nr, const char* what) override;
  void on_frames_allocated(Pfn, uint64_t) override {}

  /// Which cached translations are live (set by the System once the arch exists;
  /// without it every fill counts as live).
  void set_liveness(const TranslationLiveness* l) { m_live = l; }
  /// Residency (models/tlb/residency.h): counts live cached translations per frame.
  bool filled(unsigned cpu, const TlbEntry& e) override;
  void left(const TlbEntry& e) override;
  bool filled(unsigned cpu, const WalkCacheEntry& e) override;
  void left(const WalkCacheEntry& e) override;
  void attach(unsigned cpu, Tlb& t) override;
  void attach(unsigned cpu, WalkCache& w) override;
  /// The liveness of `tag` on `cpu` may have ended (a flush moved the mm's tlb_gen
  /// past the CPU's, the tag was unloaded, its mm is being torn down): stop counting
  /// the entries that are no longer live.
  void retire(unsigned cpu, uint16_t tag);
  /// retire() on every CPU.
  void retire_everywhere(uint16_t tag);
  /// Live cached translations counted now (for tests).
  uint64_t tracked() const { return m_tracked; }

  /// The core MMUs' stale hook (models/cpu/core_mmu.h StaleHook).
  static void on_stale(void* self, unsigned cpu, VirtAddr va, Pfn pfn, StaleKind kind) {
    static_cast<CoherenceChecker*>(self)->report(cpu, va, pfn, kind);
  }
  void report(unsigned cpu, VirtAddr va, Pfn pfn, StaleKind kind);

  /// Turns the permission check on: page tables are read from `pm` in `arch`'s
  /// format (`levels` deep), the kernel's state from `activity`.
  void enable_permissions(mm::PhysMem& pm, mm::Arch arch, unsigned levels,
                          KernelActivity& activity) {
    m_pm = &pm;
    m_codec = mm::PteCodec(arch);
    m_levels = levels;
    m_activity = &activity;
  }
  bool permissions_enabled() const { return m_activity != nullptr; }
  /// A kernel call began or ended: page-table entries may have changed since any
  /// check made before (the per-CPU memo of the last checked page is void).
  void kernel_boundary() { ++m_epoch; }
  /// The core MMUs' permission hook (models/cpu/core_mmu.h PermissionHook).
  static void on_hit(void* self, unsigned cpu, VirtAddr va, Access kind, const TlbEntry& e,
                     Pfn root) {
    static_cast<CoherenceChecker*>(self)->check_permission(cpu, va, kind, e, root);
  }
  void check_permission(unsigned cpu, VirtAddr va, Access kind, const TlbEntry& e, Pfn root);
  uint64_t permission_violations() const { return m_permission_violations; }

  uint64_t violations() const { return m_violations; }
  const std::vector<StaleTlbViolation>& first_violations() const { return m_first; }

 private:
  void record(StaleTlbViolation v);
  /// The count of translations of `size` at frame `pfn` (allocated at first use).
  uint32_t& cached(PageSize size, Pfn pfn);
  /// Reports, and stops counting, every live entry that translates to or points at a
  /// frame of [pfn, pfn + nr); `expected` is what the counts said.
  void report_freed_while_cached(Pfn pfn, uint64_t nr, uint64_t expected);
  uint8_t intern(const char* what);

  std::vector<uint32_t> m_gen;
  std::vector<uint8_t> m_freed_by;   // index into m_what
  std::vector<const char*> m_what;   // [0] = nullptr ("?")
  /// [PageSize] → live cached translations of that size per naturally aligned block
  /// of frames (walk-cache pointers count in [k4K] at the table's frame).
  std::array<std::vector<uint32_t>, kNumPageSizes> m_cached;
  uint64_t m_tracked = 0;
  uint64_t m_retired = 0;
  uint64_t m_freed_while_cached = 0;
  const TranslationLiveness* m_live = nullptr;
  struct CpuStructures {
    std::vector<Tlb*> tlbs;
    std::vector<WalkCache*> walk_caches;
  };
  std::vector<CpuStructures> m_structures;
  bool m_fail_fast;
  std::vector<StaleTlbViolation> m_first;
  uint64_t m_violations = 0;
  uint64_t m_walk_cache_violations = 0;
  uint64_t m_bbm_violations = 0;
  uint64_t m_freed_before_invalidate = 0;
  uint64_t m_frames_freed = 0;
  uint64_t m_permission_violations = 0;
  uint64_t m_permission_in_flight = 0;
  mm::PhysMem* m_pm = nullptr;
  mm::PteCodec m_codec{mm::Arch::kX86_64};
  unsigned m_levels = 4;
  KernelActivity* m_activity = nullptr;
  /// Per CPU: the PMD entry its last checked walk went through (see check_permission).
  struct PmdMemo {
    Pfn root;
    uint64_t region = 0;  // va >> 21
    Pfn pmd_table;
    uint32_t pmd_gen = 0;
    const uint64_t* pmdp = nullptr;
    uint64_t pmd = 0;
    bool rw = true, nx = false;  // x86 rights of the levels above the PTE table
  };
  std::vector<PmdMemo> m_memo;
  /// Per CPU: the last page a hit was checked on with no kernel call begun or ended
  /// since (m_epoch), the frame it translated to and the accesses found allowed.
  struct PageMemo {
    Pfn root;
    uint64_t vpage = ~uint64_t{0};
    uint64_t epoch = ~uint64_t{0};
    Pfn frame;
    uint8_t allowed = 0;  // bit per Access
  };
  std::vector<PageMemo> m_page_memo;
  uint64_t m_epoch = 0;
  StatGroup m_stats;
  CounterRef m_violations_stat{&m_stats, "stale_tlb_violations", "count",
                               "Stale translations used (all kinds below).",
                               &m_violations};
  CounterRef m_walk_cache_stat{&m_stats, "walk_cache_violations", "count",
                               "Walks continued from a cached pointer to a freed page table.",
                               &m_walk_cache_violations};
  CounterRef m_bbm_stat{&m_stats, "break_before_make_violations", "count",
                        "contpte entries rewritten while a TLB still held the block.",
                        &m_bbm_violations};
  CounterRef m_fbi_stat{&m_stats, "freed_before_invalidate_violations", "count",
                        "By-VA invalidations that found an entry whose frame was already freed.",
                        &m_freed_before_invalidate};
  CounterRef m_perm_stat{&m_stats, "permission_violations", "count",
                         "TLB hits that allowed an access the current PTE does not (not present, "
                         "another frame, read-only, no-exec) after the kernel call that changed "
                         "it had returned.",
                         &m_permission_violations};
  CounterRef m_perm_window_stat{&m_stats, "permission_in_flight", "count",
                                "The same mismatch while a kernel call that may still flush it "
                                "had not returned (allowed; not counted above).",
                                &m_permission_in_flight};
  CounterRef m_fwc_stat{&m_stats, "freed_while_cached_violations", "count",
                        "Frames or page tables freed while a TLB or walk cache of some CPU still "
                        "held a translation to them that the hardware may use (found at the free).",
                        &m_freed_while_cached};
  CounterRef m_retired_stat{&m_stats, "translations_retired", "count",
                            "Cached translations no longer counted as live because their CPU "
                            "will flush them before use (x86: its PCID's tlb_gen fell behind; "
                            "arm64: the ASID of an mm being torn down).",
                            &m_retired};
  CounterRef m_freed_stat{&m_stats, "frames_freed", "frames", "Frames returned to the allocator.",
                          &m_frames_freed};
};

}  // namespace tlbsim
