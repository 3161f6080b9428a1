// Kernel profile: the switches that reproduce one Linux generation. Profiles are
// JSON files in configs/kernels/ that set these keys; every switch can also be
// overridden alone. docs/kernel-profiles.md lists each switch, its default per
// profile and the kernel series it stands for.
#pragma once

#include <array>
#include <string>

#include "base/params.h"

namespace tlbsim::mm {

/// Anonymous THP sizes with a sysfs control (orders 2..9 on 4 KiB pages).
inline constexpr unsigned kMinAnonThpOrder = 2;
inline constexpr unsigned kPmdOrder = 9;

/// /sys/kernel/mm/transparent_hugepage/ controls.
struct ThpParams : ParamSet {
  using ParamSet::ParamSet;
  Param<std::string> enabled{this, "enabled", "never", "",
                             "Top-level THP mode (transparent_hugepage/enabled)."};
  Param<std::string> hugepages_16kB{this, "hugepages_16kB", "never", "",
                                    "hugepages-16kB/enabled (mTHP order 2)."};
  Param<std::string> hugepages_32kB{this, "hugepages_32kB", "never", "",
                                    "hugepages-32kB/enabled (mTHP order 3)."};
  Param<std::string> hugepages_64kB{this, "hugepages_64kB", "never", "",
                                    "hugepages-64kB/enabled (mTHP order 4)."};
  Param<std::string> hugepages_128kB{this, "hugepages_128kB", "never", "",
                                     "hugepages-128kB/enabled (mTHP order 5)."};
  Param<std::string> hugepages_256kB{this, "hugepages_256kB", "never", "",
                                     "hugepages-256kB/enabled (mTHP order 6)."};
  Param<std::string> hugepages_512kB{this, "hugepages_512kB", "never", "",
                                     "hugepages-512kB/enabled (mTHP order 7)."};
  Param<std::string> hugepages_1024kB{this, "hugepages_1024kB", "never", "",
                                      "hugepages-1024kB/enabled (mTHP order 8)."};
  Param<std::string> hugepages_2048kB{this, "hugepages_2048kB", "inherit", "",
                                      "hugepages-2048kB/enabled (PMD THP, order 9)."};
  Param<bool> use_zero_page{this, "use_zero_page", true, "",
                            "Read faults on anonymous memory map the shared zero page "
                            "(transparent_hugepage/use_zero_page for PMDs; always for PTEs)."};
  Param<bool> shrink_underused{this, "shrink_underused", true, "",
                               "Queue PMD THPs on the deferred split queue at fault time "
                               "so the shrinker can split underused ones "
                               "(transparent_hugepage/shrink_underused, Linux 6.12+; only "
                               "with deferred_split_partial_only)."};

  ThpParams(ParamSet* parent, const char* key, const char* doc) : ParamSet(parent, key, doc) {
    enabled.one_of({"always", "madvise", "never"});
    for (auto* p : per_size()) p->one_of({"always", "inherit", "madvise", "never"});
  }
  /// The per-size control for `order` (2..9).
  const Param<std::string>& per_size(unsigned order) const { return *per_size()[order - 2]; }

 private:
  std::array<Param<std::string>*, 8> per_size() const {
    auto* self = const_cast<ThpParams*>(this);
    return {&self->hugepages_16kB,  &self->hugepages_32kB,  &self->hugepages_64kB,
            &self->hugepages_128kB, &self->hugepages_256kB, &self->hugepages_512kB,
            &self->hugepages_1024kB, &self->hugepages_2048kB};
  }
};

struct KernelProfile : ParamSet {
  KernelProfile() : ParamSet("Kernel profile: switches reproducing one Linux generation.") {
    sharers_estimate.one_of({"estimated_sharers", "likely_mapped_shared", "maybe_mapped_shared"});
    thp_anon_align.one_of({"none", "len_ge_pmd", "pmd_multiple"});
  }

  Param<std::string> name{this, "name", "linux-6.15", "", "Name of the profile."};
  Param<std::string> version{this, "version", "6.15", "",
                             "Linux version the profile models (MAJOR.MINOR, 6.7..6.19): "
                             "every behaviour switch takes its default from the release "
                             "that changed it (docs/kernel-profiles.md); keys set next to it "
                             "override those defaults one by one."};
  Param<bool> rmap_batching{this, "rmap_batching", true, "",
                            "Batched folio rmap calls for PTE runs of one folio "
                            "(folio_*_rmap_ptes; Linux 6.8/6.9 rmap overhaul). Off: one "
                            "rmap call per PTE."};
  Param<bool> zap_batching{this, "zap_batching", true, "",
                           "zap_present_ptes batches PTEs of one folio with folio_pte_batch "
                           "(Linux 6.9). Off: per-PTE refcount, rmap and gather entry."};
  Param<bool> fork_batching{this, "fork_batching", true, "",
                            "copy_present_ptes batches PTEs of one folio (Linux 6.9)."};
  Param<bool> mm_id{this, "mm_id", true, "",
                    "CONFIG_MM_ID owner tracking of large folios (Linux 6.15)."};
  Param<bool> no_page_mapcount{this, "no_page_mapcount", false, "",
                               "CONFIG_NO_PAGE_MAPCOUNT: no per-page mapcounts in large "
                               "folios (Linux 6.15, experimental). Requires mm_id."};
  Param<bool> cow_reuse_large{this, "cow_reuse_large", true, "",
                              "Write faults reuse exclusively owned PTE-mapped large folios "
                              "(Linux 6.15, via MM-ID). Off: copy."};
  Param<bool> deferred_split_partial_only{
      this, "deferred_split_partial_only", true, "",
      "__folio_remove_rmap() queues a large anon folio for deferred split only while it "
      "stays partially mapped (Linux 6.10: partially_mapped = nr && atomic_read(mapped)). "
      "Off (6.7-6.9): any PTE-level removal queues it, also the one that unmaps it "
      "entirely."};
  Param<std::string> sharers_estimate{
      this, "sharers_estimate", "maybe_mapped_shared", "",
      "How MADV_COLD/PAGEOUT/FREE and reclaim's madvise walk decide that a large folio "
      "is shared (and skip it): estimated_sharers (6.7-6.9, the first page's mapcount), "
      "likely_mapped_shared (6.10-6.14, folio_likely_mapped_shared()), "
      "maybe_mapped_shared (6.15+, MM-ID)."};
  Param<bool> unmap_lazyfree_batch{
      this, "unmap_lazyfree_batch", true, "",
      "try_to_unmap_one() unmaps a lazyfree large folio's PTEs in one batch and, when the "
      "flush is not deferred, flushes them with flush_tlb_range() (Barry Song, 'mm: support "
      "batched unmap for lazyfree large folios during reclamation', 354dffd29575, v6.15). "
      "Off: one PTE at a time with ptep_clear_flush() (flush_tlb_page)."};
  Param<bool> arm64_pte_needs_flush{
      this, "arm64_pte_needs_flush", false, "",
      "arm64 has its own pte_needs_flush() (Linux 6.19, c320dbb7c80d): mprotect flushes a "
      "PTE only when a valid entry changes a non-software bit. Off (6.7-6.18): the generic "
      "one, always true. Ignored on x86."};
  Param<bool> arm64_local_flush_on_write_fault{
      this, "arm64_local_flush_on_write_fault", false, "",
      "arm64 __ptep_set_access_flags() on a write fault (COW reuse) invalidates the stale "
      "read-only entry locally (TLBI VALE1 + DSB NSH; Linux 6.19, Huang Ying). Off "
      "(6.7-6.18): flush_tlb_page(), a broadcast TLBI VALE1IS + DSB ISH. Ignored on x86."};
  Param<bool> madvise_split_partial_only{
      this, "madvise_split_partial_only", true, "",
      "MADV_COLD/PAGEOUT/FREE split a PTE-mapped large folio only when the range covers "
      "part of it, and handle a wholly covered one as one folio (Linux 6.10: Ryan Roberts, "
      "'avoid split during MADV_PAGEOUT and MADV_COLD'; Lance Yang, 'optimize lazyfreeing "
      "with mTHP in madvise_free'). Off (6.7-6.9): every PTE-mapped large folio is split "
      "first."};
  Param<std::string> thp_anon_align{
      this, "thp_anon_align", "pmd_multiple", "",
      "THP alignment of anonymous private mmaps without a hint (__get_unmapped_area → "
      "thp_get_unmapped_area_vmflags): len_ge_pmd aligns every mapping of at least "
      "2 MiB to a PMD boundary, pmd_multiple only lengths that are multiples of 2 MiB, "
      "none never."};
  Param<bool> arm64_batched_pending_flush_mm{
      this, "arm64_batched_pending_flush_mm", false, "",
      "arm64 arch_flush_tlb_batched_pending() flushes the mm (TLBI ASIDE1IS + DSB; Linux "
      "6.16, Ryan Roberts, 'Close theoretical race where stale TLB entry remains valid'). "
      "Off (6.5-6.15): dsb(ish) only, the TLBIs having gone out at unmap."};
  Param<bool> huge_zero_wp_thp{
      this, "huge_zero_wp_thp", true, "",
      "A write fault on the huge zero page allocates a PMD THP (do_huge_zero_wp_pmd(), "
      "Linux 6.13). Off: split the zero PMD and fall back to a PTE fault."};
  Param<bool> x86_lazy_cpumask{
      this, "x86_lazy_cpumask", true, "",
      "x86 keeps a CPU in the previous mm's mm_cpumask at switch_mm (Linux 6.14, Rik van "
      "Riel: the bit is trimmed later). Off: switch_mm_irqs_off() clears it."};
  Param<bool> flush_range_freed_tables{
      this, "flush_range_freed_tables", true, "",
      "x86 flush_tlb_range() passes freed_tables = true, so lazy CPUs get IPIs (early-2025 "
      "fix, v6.14 + stable). Off: older behaviour."};
  Param<uint32_t> x86_flush_ceiling{this, "x86_flush_ceiling", 33, "pages",
                                    "x86 tlb_single_page_flush_ceiling: ranges of more "
                                    "strides become full flushes.",
                                    {min_value<uint32_t>(0)}};
  Param<uint32_t> arm64_max_dvm_ops{this, "arm64_max_dvm_ops", 512, "ops",
                                    "arm64 MAX_DVM_OPS (= PTRS_PER_PTE): per-page TLBIs up "
                                    "to this count, else an ASID flush.",
                                    {min_value<uint32_t>(1)}};
  Param<bool> debug_free_before_flush{
      this, "debug_free_before_flush", false, "",
      "BROKEN ON PURPOSE (tests only): free gathered pages before the TLB flush. The TLB "
      "coherence checker must catch it."};
  Param<bool> debug_fork_skip_flush{
      this, "debug_fork_skip_flush", false, "",
      "BROKEN ON PURPOSE (tests only): dup_mmap() write-protects the parent's PTEs but skips "
      "its flush_tlb_mm(oldmm). The permission checker must catch the parent's next store."};
  Param<bool> debug_mprotect_skip_flush{
      this, "debug_mprotect_skip_flush", false, "",
      "BROKEN ON PURPOSE (tests only): change_protection() records no flush in the "
      "mmu_gather. The permission checker must catch a store after mprotect(PROT_READ)."};
  Param<bool> debug_cow_skip_flush{
      this, "debug_cow_skip_flush", false, "",
      "BROKEN ON PURPOSE (tests only): wp_page_copy() clears the old PTE without the flush "
      "of ptep_clear_flush(). The permission checker must catch another CPU still reading "
      "the old page."};
  Param<bool> debug_skip_lazy_freed_tables{
      this, "debug_skip_lazy_freed_tables", false, "",
      "BROKEN ON PURPOSE (tests only): do not IPI lazy CPUs even when page tables were "
      "freed."};
  Param<bool> arm64_contpte{this, "arm64_contpte", true, "",
                            "arm64 CONFIG_ARM64_CONTPTE (Linux 6.9): set_ptes() of a whole "
                            "aligned 16-page block of one folio sets PTE_CONT; changing one "
                            "PTE of a block unfolds it."};
  Param<bool> debug_no_contpte_unfold_flush{
      this, "debug_no_contpte_unfold_flush", false, "",
      "BROKEN ON PURPOSE (tests only): a contpte unfold clears and rewrites the 16 PTEs "
      "without the TLBI between break and make. The TLB coherence checker must catch it."};
  Param<bool> batched_reclaim_flush{
      this, "batched_reclaim_flush", true, "",
      "TTU_BATCH_FLUSH honoured: reclaim, migration and folio split clear PTEs and flush "
      "once per batch (should_defer_flush; x86 since 4.x, arm64 since Linux 6.5, Barry "
      "Song / Yicong Yang). Off: one synchronous flush per unmapped page, as arm64 "
      "before 6.5."};
  Param<bool> pte_accessible_skip{
      this, "pte_accessible_skip", true, "",
      "set_tlb_ubc_flush_pending() skips entries that no TLB can hold (!pte_accessible; "
      "Huang Ying, 'mm,unmap: avoid flushing TLB in batch if PTE is inaccessible', "
      "v6.0). Off: every deferred unmap joins the batch."};
  Param<bool> pt_reclaim{
      this, "pt_reclaim", true, "",
      "CONFIG_PT_RECLAIM (Qi Zheng, Linux 6.14, x86-64 only): MADV_DONTNEED frees a PTE "
      "table it emptied over a whole PMD range (zap_pte_range: try_get_and_clear_pmd, "
      "free_pte) and flushes with freed_tables. Ignored on arm64."};
  ThpParams thp{this, "thp", "Transparent huge page controls (sysfs)."};
  Param<bool> per_vma_lock{this, "per_vma_lock", true, "",
                           "Page faults take the per-VMA lock instead of mmap_lock "
                           "(lock_vma_under_rcu; Linux 6.4 for anonymous VMAs, 6.6 swap and "
                           "userfaultfd, 6.7 file VMAs)."};
  Param<bool> mremap_pte_batch{this, "mremap_pte_batch", false, "",
                               "move_ptes() moves a present PTE of a large folio together with "
                               "the rest of its batch where the architecture hints one "
                               "(pte_batch_hint: arm64 contpte blocks; never on x86) instead of "
                               "one by one (Linux 6.17)."};
  Param<bool> mremap_multi_vma{this, "mremap_multi_vma", false, "",
                               "A same-size MREMAP_FIXED move of a range spanning several VMAs "
                               "moves each (remap_move, Linux 6.17) instead of failing with "
                               "EFAULT; not modelled yet (refused as not supported)."};
  Param<bool> madvise_vma_lock{this, "madvise_vma_lock", false, "",
                               "MADV_DONTNEED and MADV_FREE of a range inside one VMA run under "
                               "the per-VMA lock instead of mmap_lock (Linux 6.16)."};
  Param<uint32_t> folio_batch_size{this, "folio_batch_size", 31, "folios",
                                   "PAGEVEC_SIZE: folios per per-CPU LRU batch (lru_lock taken "
                                   "once per batch); 31 from Linux 6.9, 15 before.",
                                   {min_value<uint32_t>(1), max_value<uint32_t>(255)}};
  Param<Bytes> fault_around_bytes{
      this, "fault_around_bytes", Bytes{64 << 10}, "bytes",
      "File read faults map up to this many bytes of page-cache pages around the fault "
      "(debugfs fault_around_bytes; rounded down to a power of two, 4KiB..2MiB).",
      {min_value(Bytes{4 << 10}), max_value(Bytes{2 << 20})}};

  /// Checks the combination: no_page_mapcount needs mm_id, the version is modelled,
  /// and nothing is set that the version cannot have (kernel_versions.cpp).
  void validate(const std::string& pointer) const override;
};

/// The sysfs THP state as Linux keeps it (huge_anon_orders_always/_inherit/_madvise
/// bitmaps and transparent_hugepage_flags), computed once from a profile so the
/// fault path never compares strings. Bit n stands for order n.
struct ThpSysfs {
  uint32_t orders_always = 0;
  uint32_t orders_inherit = 0;
  uint32_t orders_madvise = 0;
  bool global_always = false;   // enabled == always
  bool global_madvise = false;  // enabled == madvise
  bool use_zero_page = true;
  bool shrink_underused = true;

  static ThpSysfs from(const KernelProfile& p) {
    ThpSysfs s;
    s.global_always = p.thp.enabled() == "always";
    s.global_madvise = p.thp.enabled() == "madvise";
    for (unsigned o = kMinAnonThpOrder; o <= kPmdOrder; ++o) {
      const std::string& v = p.thp.per_size(o)();
      if (v == "always") s.orders_always |= 1u << o;
      else if (v == "inherit") s.orders_inherit |= 1u << o;
      else if (v == "madvise") s.orders_madvise |= 1u << o;
    }
    s.use_zero_page = p.thp.use_zero_page();
    s.shrink_underused = p.thp.shrink_underused();
    return s;
  }
};

}  // namespace tlbsim::mm
