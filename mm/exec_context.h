// Cost accounting. Kernel code never measures time: it counts primitive
// operations on the ExecContext of the CPU it runs on. The CPU model turns the
// counts into cycles with the machine's cost table (see docs/machines.md), and
// the counts themselves are reported so a result can be explained.
#pragma once

#include <array>
#include <cstdint>

namespace tlbsim::mm {

/// Primitive kernel operations whose cost the machine defines.
enum class KOp : uint8_t {
  kSyscallEntry,  // user->kernel->user transition of a system call
  kFaultEntry,    // exception entry/exit + handle_mm_fault dispatch
  kPteRead,       // read of one page-table entry
  kPteWrite,      // write/clear of one page-table entry
  kAtomic,        // atomic RMW on a folio counter (refcount, mapcount)
  kRmapCall,      // one folio rmap family call (fixed part)
  kLock,          // one lock/unlock round trip (PTL, mmap lock, folio lock)
  kPageAlloc,     // one buddy allocation (any order)
  kPageFree,      // one buddy free (any order)
  kPageZero,      // zeroing one 4 KiB page
  kPageCopy,      // copying one 4 KiB page
  kPtAlloc,       // allocating and installing a page-table page
  kPtFree,        // freeing a page-table page
  kGatherEntry,   // queueing one item in the mmu_gather
  kVmaOp,         // VMA tree insert/remove/split/merge
  kCount
};

inline constexpr std::array<const char*, static_cast<size_t>(KOp::kCount)> kKOpNames = {
    "syscall_entry", "fault_entry", "pte_read",  "pte_write",   "atomic",
    "rmap_call",     "lock",        "page_alloc", "page_free",  "page_zero",
    "page_copy",     "pt_alloc",    "pt_free",    "gather_entry", "vma_op"};

/// Why a TLB flush was requested (attribution in statistics).
enum class FlushCause : uint8_t {
  kNone,
  kMunmap,
  kDontneed,
  kExit,
  kMprotect,
  kFork,
  kCow,
  kPmdSplit,
  kReclaim,
  kMigration,
  kContpteUnfold,
  kOther,
  kCount
};

inline constexpr std::array<const char*, static_cast<size_t>(FlushCause::kCount)>
    kFlushCauseNames = {"none",     "munmap",    "dontneed",  "exit",
                        "mprotect", "fork",      "cow",       "pmd_split",
                        "reclaim",  "migration", "contpte_unfold", "other"};

/// The per-CPU execution context of kernel code.
struct ExecContext {
  explicit ExecContext(unsigned cpu_id = 0) : cpu(cpu_id) {}

  void count(KOp op, uint64_t n = 1) { ops[static_cast<size_t>(op)] += n; }
  uint64_t get(KOp op) const { return ops[static_cast<size_t>(op)]; }

  unsigned cpu;                        // the CPU this kernel code runs on
  FlushCause cause = FlushCause::kNone;  // set by the syscall/fault entry point
  std::array<uint64_t, static_cast<size_t>(KOp::kCount)> ops{};
};

/// Sets ctx.cause for a scope and restores the previous one.
class CauseScope {
 public:
  CauseScope(ExecContext& ctx, FlushCause c) : m_ctx(ctx), m_prev(ctx.cause) { ctx.cause = c; }
  ~CauseScope() { m_ctx.cause = m_prev; }
  CauseScope(const CauseScope&) = delete;
  CauseScope& operator=(const CauseScope&) = delete;

 private:
  ExecContext& m_ctx;
  FlushCause m_prev;
};

}  // namespace tlbsim::mm
