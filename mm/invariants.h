// The invariant checker (DESIGN §2): recounts every mapping from the page tables
// and compares with what the kernel keeps. On in every test; optional in runs.
//   - per folio: folio mapcount (and per-page mapcounts with PAGE_MAPCOUNT, entire
//     mapcount) equal the PTE/PMD mappings found; refcount ≥ mapcount;
//   - MM-ID: a slot's count never exceeds its mm's mappings; a folio mapped by two
//     or more mms has "maybe mapped shared" set (no false negatives);
//   - per mm: rss counters equal the mapped anon/file pages;
//   - no mapped frame, and no page-table frame in use, is free in the allocator;
//   - NR_ANON_MAPPED / NR_FILE_MAPPED / NR_ANON_THPS / NR_FILE_PMDMAPPED equal the
//     pages the page tables map;
//   - every leaf lies in a VMA at its page's linear index (file pages in a VMA of
//     their file); writable anon mappings are PageAnonExclusive; private mappings
//     never write file pages; writable shared file pages are dirty;
//   - per mm: nr_pgtables = page tables walked + PTE tables deposited with PMD
//     tables, one deposit per anon (or huge zero) PMD mapping;
//   - the page cache: each cached folio is live and holds its nr_pages references;
//   - swap: MM_SWAPENTS equals the swap entries in each mm's page tables, each slot's
//     count equals the swap PTEs naming it, each swap-cache folio is live and names
//     its slot; no migration entry survives a kernel entry.
#pragma once

#include <string>

namespace tlbsim::mm {

class Kernel;

/// Returns "" when every invariant holds, else a description of the first failures.
std::string check_invariants(const Kernel& kernel);

}  // namespace tlbsim::mm
