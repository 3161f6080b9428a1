#include "models/cpu/core_mmu_stats.h"

namespace tlbsim {

void register_tlb_stats(StatGroup& g, const Tlb& t, StatRefs& refs) {
  const TlbStats& s = t.stats;
  refs.push_back(std::make_unique<CounterRef>(&g, "lookups", "count", "Lookups.", &s.lookups));
  refs.push_back(std::make_unique<CounterRef>(&g, "hits", "count", "Hits.", &s.hits));
  refs.push_back(std::make_unique<CounterRef>(&g, "misses", "count", "Misses.", &s.misses));
  static const struct {
    PageSize size;
    const char* key;
    const char* doc;
  } kSizes[] = {{PageSize::k4K, "hits_4k", "Hits on 4 KiB entries."},
                {PageSize::k64K, "hits_64k", "Hits on 64 KiB (contiguous) entries."},
                {PageSize::k2M, "hits_2m", "Hits on 2 MiB entries."},
                {PageSize::k1G, "hits_1g", "Hits on 1 GiB entries."}};
  for (const auto& z : kSizes)
    if (t.holds(z.size))
      refs.push_back(std::make_unique<CounterRef>(&g, z.key, "count", z.doc,
                                                  &s.hits_by_size[static_cast<size_t>(z.size)]));
  refs.push_back(std::make_unique<CounterRef>(&g, "inserts", "count", "Fills.", &s.inserts));
  refs.push_back(
      std::make_unique<CounterRef>(&g, "evictions", "count", "Valid entries evicted.", &s.evictions));
  refs.push_back(std::make_unique<CounterRef>(&g, "invalidations", "count",
                                              "Entries dropped by invalidations.", &s.invalidations));
  refs.push_back(std::make_unique<Formula>(&g, "miss_rate", "ratio", "misses / lookups.",
                                           [&s] { return ratio(s.misses, s.lookups); }));
}

Histogram* register_walker_stats(StatGroup& w, const CoreMmuCounters& c,
                                 const std::array<const char*, 6>& level_names, StatRefs& refs,
                                 std::vector<std::unique_ptr<StatGroup>>& groups) {
  refs.push_back(std::make_unique<CounterRef>(&w, "walks", "count", "Page walks started.", &c.walks));
  refs.push_back(std::make_unique<CounterRef>(&w, "faults", "count",
                                              "Walks that raised a page fault.", &c.walk_faults));
  refs.push_back(std::make_unique<CounterRef>(&w, "reads", "count",
                                              "Page-table entries read by walks.", &c.walk_reads));
  refs.push_back(std::make_unique<CounterRef>(&w, "cycles", "cycles", "Cycles spent walking.",
                                              &c.walk_cycles_total));
  refs.push_back(std::make_unique<CounterRef>(
      &w, "ad_updates", "count", "Accessed/dirty updates by the walker.", &c.ad_updates));
  // reads.<level>.<cache level>: where each level's entries came from.
  auto reads = std::make_unique<StatGroup>(&w, "reads_at");
  for (unsigned l = 1; l < level_names.size(); ++l) {
    if (!level_names[l] || !*level_names[l]) continue;
    auto g = std::make_unique<StatGroup>(reads.get(), level_names[l]);
    for (size_t m = 0; m < static_cast<size_t>(MemLevel::kCount); ++m)
      refs.push_back(std::make_unique<CounterRef>(
          g.get(), kMemLevelNames[m], "count",
          "Walk reads of this page-table level served at this cache level.",
          &c.walk_reads_at[l][m]));
    groups.push_back(std::move(g));
  }
  groups.push_back(std::move(reads));
  auto hist = std::make_unique<Histogram>(&w, "latency", "cycles", "Walk latency distribution.");
  Histogram* h = hist.get();
  refs.push_back(std::move(hist));
  return h;
}

}  // namespace tlbsim
