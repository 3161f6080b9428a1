#include "mm/kernel_versions.h"

#include <charconv>

#include "base/error.h"
#include "mm/kernel_profile.h"

namespace tlbsim::mm {

std::optional<KernelVersion> parse_kernel_version(std::string_view text) {
  const size_t dot = text.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 >= text.size()) return std::nullopt;
  unsigned major = 0, minor = 0;
  const char* b = text.data();
  auto r1 = std::from_chars(b, b + dot, major);
  auto r2 = std::from_chars(b + dot + 1, b + text.size(), minor);
  if (r1.ec != std::errc() || r1.ptr != b + dot || r2.ec != std::errc() ||
      r2.ptr != b + text.size() || major > 99 || minor > 99)
    return std::nullopt;
  return major * 100 + minor;
}

std::string format_kernel_version(KernelVersion v) {
  return std::to_string(v / 100) + "." + std::to_string(v % 100);
}

namespace {
constexpr KernelVersion kOld = kOldestKernelVersion;
}  // namespace

const std::vector<VersionedSwitch>& kernel_version_table() {
  // Each value with the release that introduced it; the oldest row is the state of
  // linux-6.7. Sources: the commit or series title as merged, and its first release.
  static const std::vector<VersionedSwitch> table = {
      {"rmap_batching",
       {{kOld, "false", "page_add_anon_rmap() / page_remove_rmap() per page"},
        {608, "true",
         "David Hildenbrand, \"mm/rmap: interface overhaul\" (v6.8): folio_add_*_rmap_ptes() "
         "and folio_remove_rmap_ptes() take a run of PTEs of one folio"}}},
      {"zap_batching",
       {{kOld, "false", "zap_pte_range() per PTE"},
        {609, "true",
         "David Hildenbrand, \"mm/memory: optimize unmap/zap with PTE-mapped THP\" (v6.9): "
         "zap_present_ptes() + folio_pte_batch()"}}},
      {"fork_batching",
       {{kOld, "false", "copy_present_pte() per PTE"},
        {609, "true",
         "David Hildenbrand, \"mm/memory: optimize fork() with PTE-mapped THP\" (v6.9): "
         "copy_present_ptes()"}}},
      {"arm64_contpte",
       {{kOld, "false", "no contiguous bit for user mappings"},
        {609, "true",
         "Ryan Roberts, \"Transparent Contiguous PTEs for User Mappings\" (v6.9): "
         "CONFIG_ARM64_CONTPTE"}}},
      {"folio_batch_size",
       {{kOld, "15", "PAGEVEC_SIZE 15"},
        {609, "31", "Matthew Wilcox, \"mm: increase folio batch size\" (9cecde80aae0, v6.9)"}}},
      {"sharers_estimate",
       {{kOld, "\"estimated_sharers\"",
         "folio_estimated_sharers(): the first page's mapcount (madvise cold/pageout/free)"},
        {610, "\"likely_mapped_shared\"",
         "David Hildenbrand, \"mm: convert folio_estimated_sharers() to "
         "folio_likely_mapped_shared()\" (v6.10)"},
        {615, "\"maybe_mapped_shared\"",
         "David Hildenbrand, \"mm: convert folio_likely_mapped_shared() to "
         "folio_maybe_mapped_shared()\" in \"mm: MM owner tracking for large folios\" "
         "(v6.15), with CONFIG_MM_ID"}}},
      {"unmap_lazyfree_batch",
       {{kOld, "false",
         "try_to_unmap_one(): one PTE per step; ptep_clear_flush() when the flush is not "
         "deferred"},
        {615, "true",
         "Barry Song, \"mm: support batched unmap for lazyfree large folios during "
         "reclamation\" (354dffd29575, v6.15): folio_unmap_pte_batch(), flush_tlb_range()"}}},
      {"arm64_pte_needs_flush",
       {{kOld, "false",
         "arm64 takes the generic pte_needs_flush() of include/linux/pgtable.h: always true "
         "(change_pte_range flushes every present PTE)"},
        {619, "true",
         "arm64's own pte_needs_flush()/huge_pmd_needs_flush() (c320dbb7c80d, v6.19): a "
         "valid entry needs a flush when a non-software bit changes"}}},
      {"arm64_local_flush_on_write_fault",
       {{kOld, "false",
         "__ptep_set_access_flags() invalidates the stale read-only entry with "
         "flush_tlb_page(): broadcast TLBI VALE1IS + DSB ISH"},
        {619, "true",
         "Huang Ying, \"arm64, tlbflush: don't TLBI broadcast if page reused in write "
         "fault\" (cb1fa2e99955, 79301c7d605a, v6.19): local TLBI VALE1 + DSB NSH; a remote "
         "CPU with a stale read-only entry takes a spurious fault and flushes locally"}}},
      {"madvise_split_partial_only",
       {{kOld, "false",
         "madvise_cold_or_pageout_pte_range() and madvise_free_pte_range() split every "
         "PTE-mapped large folio they meet (a shared one ends the PTE table's walk)"},
        {610, "true",
         "Ryan Roberts, \"mm: madvise: avoid split during MADV_PAGEOUT and MADV_COLD\", and "
         "Lance Yang, \"mm/madvise: optimize lazyfreeing with mTHP in madvise_free\" (v6.10): "
         "folio_pte_batch(), split only when nr < folio_nr_pages()"}}},
      {"deferred_split_partial_only",
       {{kOld, "false",
         "page_remove_rmap() (6.7: PMD-sized anon THPs) and __folio_remove_rmap() (6.8, "
         "6.9: any large anon folio) queue it at any PTE-level removal, also the one that "
         "unmaps it entirely"},
        {610, "true",
         "Zi Yan, \"mm/rmap: do not add fully unmapped large folio to deferred split "
         "list\" (v6.10): partially_mapped = nr && atomic_read(mapped)"}}},
      {"thp.shrink_underused",
       {{kOld, "false", "no underused-THP shrinker"},
        {612, "true",
         "Usama Arif, \"mm: split underused THPs\" (v6.12): PG_partially_mapped, PMD THPs "
         "queued at fault time"}}},
      {"thp_anon_align",
       {{kOld, "\"len_ge_pmd\"",
         "Rik van Riel, \"mm: align larger anonymous mappings on THP boundaries\" "
         "(efa7df3e3bb5, v6.7): thp_get_unmapped_area() for anonymous private mappings "
         "of at least PMD_SIZE"},
        {612, "\"pmd_multiple\"",
         "Vlastimil Babka, \"mm, mmap: limit THP alignment of anonymous mappings to "
         "PMD-aligned sizes\" (d4148aeab412, v6.12)"}}},
      {"huge_zero_wp_thp",
       {{kOld, "false",
         "do_huge_pmd_wp_page() on the huge zero page: __split_huge_pmd() and "
         "VM_FAULT_FALLBACK to a PTE fault"},
        {613, "true",
         "Dev Jain, \"mm: Allocate THP on hugezeropage wp-fault\" (1ced09e0331f, v6.13): "
         "do_huge_zero_wp_pmd()"}}},
      {"arm64_batched_pending_flush_mm",
       {{kOld, "false",
         "arm64 arch_flush_tlb_batched_pending() is dsb(ish) only (v6.5, batched unmap "
         "flush for arm64)"},
        {616, "true",
         "Ryan Roberts, \"arm64/mm: Close theoretical race where stale TLB entry remains "
         "valid\" (4b634918384c, v6.16, also in stable): flush_tlb_mm(mm)"}}},
      {"x86_lazy_cpumask",
       {{kOld, "false",
         "switch_mm_irqs_off() clears this CPU from the previous mm's mm_cpumask"},
        {614, "true",
         "Rik van Riel, \"x86/mm/tlb: Update mm_cpumask lazily\" and \"Only trim the "
         "mm_cpumask once a second\" (v6.14): the bit stays set until flush_tlb_func() or "
         "the periodic trim clears it"}}},
      {"flush_range_freed_tables",
       {{kOld, "false", "flush_tlb_range() passes freed_tables = false"},
        {614, "true",
         "\"x86/mm: Fix flush_tlb_range() when used for zapping normal PMDs\" (v6.14, "
         "stable backports): freed_tables = true, lazy CPUs get IPIs"}}},
      {"pt_reclaim",
       {{kOld, "false", "MADV_DONTNEED leaves empty PTE tables"},
        {614, "true",
         "Qi Zheng, \"synchronously scan and reclaim empty user PTE pages\" (v6.14, "
         "CONFIG_PT_RECLAIM, x86-64)"}}},
      {"mm_id",
       {{kOld, "false", "no owner tracking of large folios"},
        {615, "true", "David Hildenbrand, \"mm: MM owner tracking for large folios\" (v6.15)"}}},
      {"cow_reuse_large",
       {{kOld, "false", "write faults copy PTE-mapped large folios"},
        {615, "true",
         "David Hildenbrand, same series (v6.15): wp_can_reuse_anon_folio() reuses "
         "exclusively owned large folios"}}},
      {"no_page_mapcount",
       {{kOld, "false",
         "per-page mapcounts; CONFIG_NO_PAGE_MAPCOUNT (v6.15, experimental) defaults to n"}}},
      {"madvise_vma_lock",
       {{kOld, "false", "madvise() takes mmap_lock"},
        {616, "true",
         "Lorenzo Stoakes, \"mm/madvise: ... per-VMA lock\" (v6.16): MADV_DONTNEED/FREE "
         "under the per-VMA lock"}}},
      {"mremap_pte_batch",
       {{kOld, "false", "move_ptes() moves one PTE at a time"},
        {617, "true",
         "Dev Jain, \"mm: Optimize mremap() by PTE batching\" (f822a9a81a31, v6.17): "
         "mremap_folio_pte_batch() where pte_batch_hint() > 1 (arm64 contpte)"}}},
      {"mremap_multi_vma",
       {{kOld, "false", "resize_is_valid(): the old range must lie in one VMA (EFAULT)"},
        {617, "true",
         "Lorenzo Stoakes, \"mm/mremap: permit mremap() move of multiple VMAs\" (v6.17)"}}},
      {"per_vma_lock",
       {{kOld, "true",
         "lock_vma_under_rcu(): anonymous faults since v6.4, swap v6.6, file v6.7"}}},
      {"batched_reclaim_flush",
       {{kOld, "true",
         "TTU_BATCH_FLUSH: x86 since v4.3, arm64 since v6.5 (Barry Song / Yicong Yang)"}}},
      {"pte_accessible_skip",
       {{kOld, "true",
         "Huang Ying, \"mm,unmap: avoid flushing TLB in batch if PTE is inaccessible\" "
         "(v6.0)"}}},
      {"x86_flush_ceiling",
       {{kOld, "33", "tlb_single_page_flush_ceiling (debugfs), 33 since v4.x"}}},
      {"arm64_max_dvm_ops",
       {{kOld, "512", "MAX_DVM_OPS = PTRS_PER_PTE (v6.7: \"arm64: tlb: ...\")"}}},
      {"fault_around_bytes", {{kOld, "65536", "fault_around_bytes (debugfs), 64 KiB"}}},
  };
  return table;
}

const std::vector<KernelVersion>& shipped_kernel_versions() {
  static const std::vector<KernelVersion> v = {607, 608, 609, 612, 615, 618, 619};
  return v;
}

Json version_value(const VersionedSwitch& sw, KernelVersion v) {
  const char* value = sw.steps.front().value;
  for (const VersionStep& s : sw.steps)
    if (s.since <= v) value = s.value;
  return Json::parse(value);
}

Json version_defaults(KernelVersion v) {
  Json out = Json::object();
  for (const VersionedSwitch& sw : kernel_version_table()) {
    const std::string key = sw.key;
    const size_t dot = key.find('.');
    if (dot == std::string::npos) out[key] = version_value(sw, v);
    else out[key.substr(0, dot)][key.substr(dot + 1)] = version_value(sw, v);
  }
  return out;
}

void apply_version_defaults(KernelProfile& p) {
  const auto v = parse_kernel_version(p.version());
  if (!v || *v < kOldestKernelVersion || *v > kNewestKernelVersion) return;
  p.load(version_defaults(*v), "");
}

bool is_unversioned_key(const std::string& key) {
  if (key == "name" || key == "version") return true;
  if (key.rfind("debug_", 0) == 0) return true;
  // The sysfs controls an experiment sets: transparent_hugepage/enabled, the
  // per-size hugepages-*kB/enabled files and use_zero_page.
  return key == "thp.enabled" || key == "thp.use_zero_page" || key.rfind("thp.hugepages_", 0) == 0;
}

std::string version_conflict(const KernelProfile& p, std::string* pointer) {
  const auto v = parse_kernel_version(p.version());
  if (!v) return "";  // validate() reports the version itself
  if (*v < 608) {
    // Anonymous multi-size THP and its per-size sysfs files arrived in 6.8 (Ryan
    // Roberts, "mm: thp: Introduce multi-size THP sysfs interface"); 6.7 has PMD THP only.
    for (unsigned order = kMinAnonThpOrder; order < kPmdOrder; ++order) {
      const std::string& s = p.thp.per_size(order)();
      if (s != "never") {
        if (pointer) *pointer = std::string("/thp/") + p.thp.per_size(order).key();
        return "anonymous mTHP (" + std::string(p.thp.per_size(order).key()) + " = \"" + s +
               "\") needs Linux 6.8+ (multi-size THP, v6.8), got version " + p.version();
      }
    }
  }
  if (p.cow_reuse_large() && !p.mm_id()) {
    if (pointer) *pointer = "/cow_reuse_large";
    return "cow_reuse_large requires mm_id (wp_can_reuse_anon_folio() decides with "
           "folio_maybe_mapped_shared(), CONFIG_MM_ID), got mm_id = false";
  }
  if (p.sharers_estimate() == "maybe_mapped_shared" && !p.mm_id()) {
    if (pointer) *pointer = "/sharers_estimate";
    return "sharers_estimate \"maybe_mapped_shared\" requires mm_id "
           "(folio_maybe_mapped_shared() reads the MM-ID slots), got mm_id = false";
  }
  return "";
}

void KernelProfile::validate(const std::string& pointer) const {
  if (no_page_mapcount() && !mm_id())
    throw InputError(pointer + "/no_page_mapcount",
                     "no_page_mapcount requires mm_id (CONFIG_NO_PAGE_MAPCOUNT depends on "
                     "CONFIG_MM_ID), got mm_id = false");
  const auto v = parse_kernel_version(version());
  if (!v || *v < kOldestKernelVersion || *v > kNewestKernelVersion)
    throw InputError(pointer + "/version",
                     "expected a modelled Linux version " +
                         format_kernel_version(kOldestKernelVersion) + ".." +
                         format_kernel_version(kNewestKernelVersion) +
                         " written MAJOR.MINOR (e.g. \"6.9\"), got \"" + version() + "\"");
  std::string where;
  const std::string why = version_conflict(*this, &where);
  if (!why.empty()) throw InputError(pointer + where, why);
}

std::string kernel_versions_markdown() {
  const auto& versions = shipped_kernel_versions();
  std::string out = "| switch |";
  for (KernelVersion v : versions) out += " " + format_kernel_version(v) + " |";
  out += " what changed, and where |\n|---|";
  for (size_t i = 0; i < versions.size(); ++i) out += "---|";
  out += "---|\n";
  for (const VersionedSwitch& sw : kernel_version_table()) {
    out += "| `" + std::string(sw.key) + "` |";
    for (KernelVersion v : versions) out += " " + version_value(sw, v).dump() + " |";
    out += " ";
    for (size_t i = 0; i < sw.steps.size(); ++i) {
      const VersionStep& s = sw.steps[i];
      if (i) out += "; ";
      out += format_kernel_version(s.since) + (i == 0 ? ": " : "+: ") + s.source;
    }
    out += " |\n";
  }
  return out;
}

}  // namespace tlbsim::mm
