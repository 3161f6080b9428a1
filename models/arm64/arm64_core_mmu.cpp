#include "models/arm64/arm64_core_mmu.h"

#include "mm/page_table.h"
#include "models/cpu/core_mmu_stats.h"
#include "models/tlb/tlb_config.h"

namespace tlbsim::arm64 {

using mm::arm64::TlbiKind;
using mm::arm64::TlbiOp;
namespace bits = mm::arm64_bits;

namespace {
constexpr std::initializer_list<PageSize> kArm64Sizes = {PageSize::k4K, PageSize::k64K,
                                                         PageSize::k2M, PageSize::k1G};

WalkCacheGeometry walk_cache_geometry(const Arm64Params& p) {
  WalkCacheGeometry g;
  g.name = "walk_cache";
  g.entries = p.walk_cache_entries();
  g.ways = p.walk_cache_ways();
  g.level_shift = {0, 0, 21, 30, 39, 0};  // level 2/1/0 descriptors of a 4 KiB granule
  return g;
}
}  // namespace

Arm64CoreMmu::Arm64CoreMmu(unsigned cpu, const MachineParams& mp, mm::PhysMem& pm,
                           CacheHierarchy& mem, StatGroup* parent, uint64_t seed)
    : m_cpu(cpu),
      m_pm(pm),
      m_l1d(tlb_geometry_of(mp.l1d, "dtlb", "/machine/l1d", kArm64Sizes, "arm64",
                            tlb_seed(seed, cpu, 0))),
      m_l2_latency(mp.stlb.hit_latency_cycles()),
      m_walk_cache_hit_cycles(mp.walker.pwc_hit_cycles()),
      m_contig(mp.arm64.contig_as_one_entry()),
      m_mem(mem),
      m_l1_cycles(mem.l1_cycles()),
      m_l1d_stats(parent, "dtlb"),
      m_l2_stats(parent, "l2tlb"),
      m_walker_stats(parent, "walker") {
  if (mp.stlb.entries())
    m_l2 = std::make_unique<Tlb>(
        tlb_geometry_of(mp.stlb, "l2tlb", "/machine/stlb", kArm64Sizes, "arm64",
                        tlb_seed(seed, cpu, 2)));
  if (mp.arm64.walk_cache_entries())
    m_walk_cache = std::make_unique<WalkCache>(walk_cache_geometry(mp.arm64));
  // A 64 KiB entry needs a structure that holds 64 KiB pages.
  m_contig = m_contig && (m_l1d.holds(PageSize::k64K) || (m_l2 && m_l2->holds(PageSize::k64K)));

  register_tlb_stats(m_l1d_stats, m_l1d, m_stat_refs);
  if (m_l2) register_tlb_stats(m_l2_stats, *m_l2, m_stat_refs);
  StatGroup* w = &m_walker_stats;
  // Our levels 1..4 are the architecture's levels 3..0 (4 KiB granule).
  m_walk_latency =
      register_walker_stats(*w, *this, {"", "l3", "l2", "l1", "l0", ""}, m_stat_refs, m_groups);
  m_stat_refs.push_back(std::make_unique<CounterRef>(
      w, "contpte_fills", "count", "64 KiB entries filled from PTE_CONT blocks.", &contpte_fills));
  if (m_walk_cache) {
    auto g = std::make_unique<StatGroup>(w, "walk_cache");
    auto& hs = m_walk_cache->stats;
    static const char* kLevel[] = {"", "", "hits_l2", "hits_l1", "hits_l0"};
    for (unsigned l = 2; l <= 4; ++l)
      m_stat_refs.push_back(std::make_unique<CounterRef>(
          g.get(), kLevel[l], "count", "Walk-cache hits on this arm64 level's descriptors.",
          &hs.hits[l]));
    m_stat_refs.push_back(std::make_unique<CounterRef>(
        g.get(), "invalidations", "count", "Entries dropped by TLBIs.", &hs.invalidations));
    m_groups.push_back(std::move(g));
  }
  m_stat_refs.push_back(std::make_unique<CounterRef>(
      parent, "tlbi_by_va", "count", "TLBIs by VA or range applied to this core.", &invlpg_count));
  m_stat_refs.push_back(std::make_unique<CounterRef>(
      parent, "tlbi_asid", "count", "TLBI ASIDE1/VMALLE1 applied to this core.", &pcid_flushes));
  m_stat_refs.push_back(std::make_unique<CounterRef>(
      parent, "tlbi_received", "count", "TLBIs applied to this core (own and broadcast).",
      &tlbi_received));
}

XlatResult Arm64CoreMmu::miss(VirtAddr va, Access kind, uint16_t asid, Pfn root, uint64_t cycles) {
  // Stage-1 walk, 4 KiB granule, levels 0..3 (ours 4..1). The walk cache is probed
  // once (all levels in parallel, deepest hit wins); then one state per level:
  // read the descriptor, check it, follow a table or finish at a page/block.
  ++walks;
  const bool write = kind == Access::kWrite;
  uint64_t lat = 0;
  unsigned level = 4;
  Pfn table = root;
  if (m_walk_cache) {
    lat += m_walk_cache_hit_cycles;
    for (unsigned l = 2; l <= 4; ++l) {
      if (const WalkCacheEntry* we = m_walk_cache->lookup_entry(l, va, asid)) {
        table = we->table;
        level = l - 1;
        if (m_gens.gen && m_gens.gen[table.value()] != we->fill_id)
          m_stale_hook(m_stale_ctx, m_cpu, va, table, StaleKind::kWalkCache);
        break;
      }
    }
  }
  for (;;) {
    if (!m_pm.is_page_table(table)) break;  // never read a freed table (reported above)
    const uint64_t pa = (table.value() << kPageShift) + uint64_t{8} * mm::level_index(va, level);
    lat += read_latency(pa, level);
    uint64_t* ep = m_pm.entry_ptr(PhysAddr(pa));
    uint64_t e = *ep;
    if (!(e & bits::kValid)) break;  // translation fault
    const bool leaf = level == 1 || !(e & bits::kTable);
    if (!leaf) {
      const Pfn next = m_codec.pfn(e);
      if (m_walk_cache)
        m_walk_cache->insert(level, va, asid, next, nullptr,
                             m_gens.gen ? m_gens.gen[next.value()] : 0);
      table = next;
      --level;
      continue;
    }
    if (level == 4) break;  // no level-0 blocks with a 4 KiB granule
    // Permission checks (EL0 access), then the hardware AF / DBM update.
    if (!(e & bits::kUser)) break;
    if (kind == Access::kExec && (e & bits::kUxn)) break;
    if (write && (e & bits::kRdonly) && !(e & bits::kDbm)) break;  // permission fault
    uint64_t upd = e | bits::kAf;
    if (write) upd &= ~bits::kRdonly;  // DBM: writable-clean becomes writable-dirty
    if (upd != e) {
      *ep = upd;
      ++ad_updates;
      lat += m_l1_cycles;
      e = upd;
    }
    PageSize size = level == 1 ? PageSize::k4K : level == 2 ? PageSize::k2M : PageSize::k1G;
    Pfn base = m_codec.pfn(e);
    if (level == 1 && m_contig && (e & bits::kCont)) {
      size = PageSize::k64K;
      base = Pfn(base.value() & ~uint64_t{mm::arm64::kContPtes - 1});
      ++contpte_fills;
    }
    TlbEntry te = TlbEntry::for_page(va, size, base, asid);
    te.writable = (e & bits::kDbm) || !(e & bits::kRdonly);
    te.dirty = !(e & bits::kRdonly);
    te.user = true;
    te.executable = !(e & bits::kUxn);
    te.global = !(e & bits::kNg);
    te.fill_id = m_gens.gen ? m_gens.gen[base.value()] : 0;
    if (m_l2 && m_l2->holds(size)) m_l2->insert(te);
    fill_l1(te);
    walk_cycles_total += lat;
    m_walk_latency->sample(lat);
    return XlatResult{false, false, cycles + lat, te.translate(va).value()};
  }
  ++walk_faults;
  walk_cycles_total += lat;
  m_walk_latency->sample(lat);
  invalidate_entry(va, asid);
  return XlatResult{true, write, cycles + lat};
}

void Arm64CoreMmu::invalidate_entry(VirtAddr va, uint16_t asid) {
  entries_invalidated += m_l1d.invalidate_va(va, asid, false);
  if (m_l2) entries_invalidated += m_l2->invalidate_va(va, asid, false);
}

uint64_t Arm64CoreMmu::tlbi(const TlbiOp& op) {
  ++tlbi_received;
  uint64_t n = 0;
  const VirtAddr va(op.va);
  const FreedBeforeInvalidateCheck check{m_gens.gen, m_stale_hook, m_stale_ctx, m_cpu};
  switch (op.kind) {
    case TlbiKind::kVale1is:
    case TlbiKind::kVae1is:
    case TlbiKind::kVale1:
      ++invlpg_count;
      n += m_l1d.invalidate_va(va, op.asid, true, check);
      if (m_l2) n += m_l2->invalidate_va(va, op.asid, true, check);
      if (op.kind == TlbiKind::kVae1is && m_walk_cache)
        m_walk_cache->invalidate_va(va, op.asid, check);
      break;
    case TlbiKind::kRvale1is:
    case TlbiKind::kRvae1is:
      ++invlpg_count;
      n += m_l1d.invalidate_va_range(va, VirtAddr(op.end()), op.asid, true, check);
      if (m_l2) n += m_l2->invalidate_va_range(va, VirtAddr(op.end()), op.asid, true, check);
      if (op.kind == TlbiKind::kRvae1is && m_walk_cache)
        m_walk_cache->invalidate_va_range(va, VirtAddr(op.end()), op.asid, check);
      break;
    case TlbiKind::kAside1is:
      ++pcid_flushes;
      if (op.for_range && m_gens.gen) {
        // In place of a range flush: entries of that range are checked as by-VA
        // TLBIs check them (core_mmu.h FreedBeforeInvalidateCheck).
        const uint64_t lo = op.va, hi = op.end();
        auto in_range = [&](const TlbEntry& e) {
          if (e.base().value() < hi && e.base().value() + e.bytes() > lo) check(e);
        };
        auto wc_in_range = [&](const WalkCacheEntry& e) {
          const unsigned shift = mm::level_shift(e.level);
          if ((e.prefix << shift) < hi && ((e.prefix + 1) << shift) > lo) check(e);
        };
        n += m_l1d.invalidate_asid(op.asid, in_range);
        if (m_l2) n += m_l2->invalidate_asid(op.asid, in_range);
        if (m_walk_cache) m_walk_cache->invalidate_asid(op.asid, wc_in_range);
        break;
      }
      n += m_l1d.invalidate_asid(op.asid);
      if (m_l2) n += m_l2->invalidate_asid(op.asid);
      if (m_walk_cache) m_walk_cache->invalidate_asid(op.asid);
      break;
    case TlbiKind::kVmalle1is:
      ++pcid_flushes;
      n += m_l1d.invalidate_all();
      if (m_l2) n += m_l2->invalidate_all();
      if (m_walk_cache) m_walk_cache->invalidate_all();
      break;
  }
  entries_invalidated += n;
  return n;
}

}  // namespace tlbsim::arm64
