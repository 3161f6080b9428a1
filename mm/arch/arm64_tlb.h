// arm64 TLB-maintenance decisions, as Linux makes them in
// arch/arm64/include/asm/tlbflush.h: which TLBI instructions a flush issues.
// Pure functions over value types, shared by mm::InstantArm64Arch and the SystemC
// arm64 model so both issue exactly the same instructions; the callers execute
// them (broadcast to every TLB, DSB completion) with or without time.
//
// Every user flush follows the template DSB ISHST → TLBI …IS × n → DSB ISH: the
// page-table writes are visible before the invalidations, and the flush is
// complete only after the DSB ISH. Broadcast: no IPIs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tlbsim::mm::arm64 {

/// CONT_PTES for the 4 KiB granule: a contpte block is 16 PTEs = 64 KiB.
inline constexpr unsigned kContPtes = 16;
inline constexpr uint64_t kContPteSize = uint64_t{kContPtes} << 12;
/// MAX_DVM_OPS (= PTRS_PER_PTE): per-page TLBIs up to this many, else an ASID flush.
inline constexpr unsigned kDefaultMaxDvmOps = 512;
/// MAX_TLBI_RANGE_PAGES = __TLBI_RANGE_PAGES(31, 3).
inline constexpr uint64_t kMaxTlbiRangePages = uint64_t{32} << 16;
/// TTL hint "level unknown" (TLBI_TTL_UNKNOWN).
inline constexpr uint8_t kTtlUnknown = 0xff;

/// The TLBI instructions Linux uses for user address spaces (inner shareable).
enum class TlbiKind : uint8_t {
  kVale1is,    // by VA, last level only (leaf entries)
  kVae1is,     // by VA, all levels (leaf and walk-cache entries)
  kRvale1is,   // range, last level only
  kRvae1is,    // range, all levels
  kAside1is,   // every entry of one ASID
  kVmalle1is,  // every entry (ASID rollover)
  kVale1,      // by VA, last level, this CPU only (not broadcast; Linux 6.19 write faults)
};

/// One TLBI instruction as a value: what it invalidates is decided by the model
/// with matches() on each cached entry (models/arm64/).
struct TlbiOp {
  TlbiKind kind = TlbiKind::kVale1is;
  uint8_t ttl = kTtlUnknown;  // level hint (arm64 numbering: 3 = PTE), informational
  uint16_t asid = 0;
  uint64_t va = 0;     // first address (by-VA and range ops)
  uint64_t pages = 1;  // 4 KiB pages covered by a range op; 1 for by-VA ops
  /// An ASIDE1IS that __flush_tlb_range_nosync() issued instead of a range too long
  /// for by-VA TLBIs (flush_tlb_mm); va/pages keep that range. No hardware meaning:
  /// the coherence checker inspects the entries of the range it drops, as for a
  /// by-VA TLBI (a whole-ASID flush of a live mm on arm64 is always broadcast).
  bool for_range = false;

  bool last_level() const {
    return kind == TlbiKind::kVale1is || kind == TlbiKind::kRvale1is || kind == TlbiKind::kVale1;
  }
  bool range() const { return kind == TlbiKind::kRvale1is || kind == TlbiKind::kRvae1is; }
  bool by_va() const { return kind <= TlbiKind::kRvae1is || kind == TlbiKind::kVale1; }
  /// One past the last address covered by a by-VA or range op.
  uint64_t end() const { return va + (pages << 12); }
};

/// __TLBI_RANGE_PAGES(num, scale): pages covered by one range TLBI.
constexpr uint64_t tlbi_range_pages(int num, int scale) {
  return static_cast<uint64_t>(num + 1) << (5 * scale + 1);
}

/// __TLBI_RANGE_NUM(pages, scale): the `num` field for `pages` at `scale`, or −1.
constexpr int tlbi_range_num(uint64_t pages, int scale) {
  const uint64_t capped = pages < tlbi_range_pages(31, scale) ? pages : tlbi_range_pages(31, scale);
  return static_cast<int>(capped >> (5 * scale + 1)) - 1;
}

/// What __flush_tlb_range() decided.
struct FlushRangePlan {
  bool asid_flush = false;  // too large: flush_tlb_mm() (one TLBI ASIDE1IS) instead
};

/**
 * flush_tlb_range_ops - the TLBIs of __flush_tlb_range(vma, start, end, stride,
 * last_level, tlb_level) for ASID @asid, appended to @out (which is cleared first).
 * @has_range:   the CPU implements FEAT_TLBIRANGE (system_supports_tlb_range()).
 * @max_dvm_ops: MAX_DVM_OPS (profile arm64_max_dvm_ops).
 *
 * Mirrors arch/arm64/include/asm/tlbflush.h:__flush_tlb_range_nosync() and
 * __flush_tlb_range_op() (4 KiB pages, no LPA2): the range is rounded out to the
 * stride; without range support ≥ max_dvm_ops strides, with it more than
 * MAX_TLBI_RANGE_PAGES pages, become an ASID flush (out stays empty). Otherwise one
 * TLBI per stride step, or with range support at most four range TLBIs (scale 3..0)
 * and one single TLBI for a last odd page.
 */
FlushRangePlan flush_tlb_range_ops(uint16_t asid, uint64_t start, uint64_t end, uint64_t stride,
                                   bool last_level, uint8_t tlb_level, bool has_range,
                                   unsigned max_dvm_ops, std::vector<TlbiOp>& out);

/// tlb_get_level() for the mmu_gather: the TTL hint from the cleared levels.
uint8_t tlb_get_level(bool freed_tables, bool cleared_ptes, bool cleared_pmds, bool cleared_puds,
                      bool cleared_p4ds);

/// A global ASID allocator (arch/arm64/mm/context.c, simplified): ASIDs are handed
/// out in increasing order and never reused within a generation, because an exiting
/// mm issues no leaf TLBIs. When the space is exhausted a new generation starts:
/// every TLB is flushed (the caller does it) and only live mms keep their ASIDs.
class AsidAllocator {
 public:
  explicit AsidAllocator(unsigned bits) : m_used(size_t{1} << bits, false) { m_used[0] = true; }
  /// Allocates an ASID; sets *rollover when a new generation had to start first
  /// (the caller must then invalidate every TLB before using the ASID).
  /// Throws std::runtime_error when every ASID belongs to a live mm.
  uint16_t alloc(bool* rollover);
  /// The mm owning `asid` died; the ASID returns at the next rollover.
  void release(uint16_t asid) { m_live.erase(asid); }
  uint64_t generation() const { return m_generation; }

 private:
  std::vector<bool> m_used;  // allocated in this generation (0 is reserved)
  struct LiveSet {
    std::vector<uint16_t> asids;
    void insert(uint16_t a) { asids.push_back(a); }
    void erase(uint16_t a);
  } m_live;
  uint64_t m_next = 1;
  uint64_t m_generation = 1;
};

}  // namespace tlbsim::mm::arm64
