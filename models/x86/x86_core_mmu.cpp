#include "models/x86/x86_core_mmu.h"

#include <sstream>
#include <stdexcept>

#include "base/error.h"
#include "base/size.h"
#include "mm/page_table.h"
#include "models/cpu/core_mmu_stats.h"
#include "models/tlb/tlb_config.h"

namespace tlbsim::x86 {

namespace {
TlbGeometry geometry_of(const TlbParams& p, const std::string& name, const std::string& ptr,
                        uint64_t seed) {
  return tlb_geometry_of(p, name, ptr, {PageSize::k4K, PageSize::k2M, PageSize::k1G}, "x86", seed);
}

WalkCacheGeometry pwc_geometry(const char* name, unsigned level, uint32_t entries) {
  WalkCacheGeometry g;
  g.name = name;
  g.entries = entries;
  g.ways = entries;
  g.level_shift = {0, 0, 0, 0, 0, 0};
  g.level_shift[level] = kWalkShifts4K[level];
  return g;
}
}  // namespace

X86CoreMmu::X86CoreMmu(unsigned cpu, const MachineParams& mp, mm::PhysMem& pm,
                       CacheHierarchy& mem, StatGroup* parent, uint64_t seed)
    : m_cpu(cpu),
      m_pm(pm),
      m_levels(mp.pgtable_levels()),
      m_l1d(geometry_of(mp.l1d, "dtlb", "/machine/l1d", tlb_seed(seed, cpu, 0))),
      m_stlb_latency(mp.stlb.hit_latency_cycles()),
      m_pwc_hit_cycles(mp.walker.pwc_hit_cycles()),
      m_mem(mem),
      m_l1_cycles(mem.l1_cycles()),
      m_l1d_stats(parent, "dtlb"),
      m_l1d_2m_stats(parent, "dtlb_2m"),
      m_stlb_stats(parent, "stlb"),
      m_walker_stats(parent, "walker") {
  if (mp.l1d_2m.entries())
    m_l1d_2m = std::make_unique<Tlb>(geometry_of(mp.l1d_2m, "dtlb_2m", "/machine/l1d_2m",
                                                   tlb_seed(seed, cpu, 1)));
  if (mp.stlb.entries())
    m_stlb = std::make_unique<Tlb>(geometry_of(mp.stlb, "stlb", "/machine/stlb", tlb_seed(seed, cpu, 2)));
  if (mp.walker.pde_cache_entries())
    m_pwc[2] = std::make_unique<WalkCache>(pwc_geometry("pde_cache", 2, mp.walker.pde_cache_entries()));
  if (mp.walker.pdpt_cache_entries())
    m_pwc[3] = std::make_unique<WalkCache>(pwc_geometry("pdpt_cache", 3, mp.walker.pdpt_cache_entries()));
  if (mp.walker.pml4_cache_entries())
    m_pwc[4] = std::make_unique<WalkCache>(pwc_geometry("pml4_cache", 4, mp.walker.pml4_cache_entries()));

  register_tlb_stats(m_l1d_stats, m_l1d, m_stat_refs);
  if (m_l1d_2m) register_tlb_stats(m_l1d_2m_stats, *m_l1d_2m, m_stat_refs);
  if (m_stlb) register_tlb_stats(m_stlb_stats, *m_stlb, m_stat_refs);
  StatGroup* w = &m_walker_stats;
  m_walk_latency = register_walker_stats(*w, *this, {"", "pte", "pde", "pdpte", "pml4e", "pml5e"},
                                         m_stat_refs, m_groups);
  static const char* kPwcNames[6] = {"", "", "pde_cache", "pdpt_cache", "pml4_cache", "pml5_cache"};
  for (unsigned l = 2; l <= 4; ++l) {
    if (!m_pwc[l]) continue;
    auto& hs = m_pwc[l]->stats;
    auto g = std::make_unique<StatGroup>(w, kPwcNames[l]);
    m_stat_refs.push_back(std::make_unique<CounterRef>(g.get(), "hits", "count", "Paging-structure-cache hits.", &hs.hits[l]));
    m_stat_refs.push_back(std::make_unique<CounterRef>(g.get(), "misses", "count", "Paging-structure-cache misses.", &hs.misses[l]));
    m_groups.push_back(std::move(g));
  }
  m_stat_refs.push_back(std::make_unique<CounterRef>(parent, "invlpg", "count", "INVLPG instructions executed.", &invlpg_count));
  m_stat_refs.push_back(std::make_unique<CounterRef>(parent, "pcid_flushes", "count", "Full flushes of a PCID (CR3 write / INVPCID).", &pcid_flushes));
}

XlatResult X86CoreMmu::miss(VirtAddr va, Access kind, uint16_t pcid, Pfn cr3, uint64_t cycles) {
  // The walk: start from the deepest paging-structure-cache hit, then one state per
  // remaining level: read the entry, check it, follow it or finish at a leaf.
  ++walks;
  const bool write = kind == Access::kWrite;
  uint64_t lat = 0;
  unsigned level = m_levels;
  Pfn table = cr3;
  for (unsigned l = 2; l <= 4 && l <= m_levels; ++l) {  // PML4E cache too on 4-level
    if (!m_pwc[l]) continue;
    lat += m_pwc_hit_cycles;
    if (const WalkCacheEntry* pe = m_pwc[l]->lookup_entry(l, va, pcid)) {
      table = pe->table;
      level = l - 1;
      if (m_gens.gen && m_gens.gen[table.value()] != pe->fill_id)
        m_stale_hook(m_stale_ctx, m_cpu, va, table, StaleKind::kWalkCache);
      break;
    }
  }
  // Access rights combine over the levels walked (SDM vol. 3A §4.6.1): a write needs
  // R/W at every level, a user access U/S at every level, and XD at any level forbids
  // a fetch. Levels served by a paging-structure cache carry Linux's _PAGE_TABLE
  // rights (RW | USER, no NX: pmd_populate etc.), which grant everything.
  bool rw = true, user = true, nx = false;
  for (;;) {
    // A walk may only read page-table frames; a cached pointer to a freed table
    // (reported above) ends the walk as a fault instead of reading junk.
    if (!m_pm.is_page_table(table)) break;
    const uint64_t pa = (table.value() << kPageShift) + uint64_t{8} * mm::level_index(va, level);
    lat += read_latency(pa, level);
    uint64_t* ep = m_pm.entry_ptr(PhysAddr(pa));
    uint64_t e = *ep;
    if (!m_codec.valid(e)) break;  // not present → page fault
    rw = rw && (e & mm::x86_bits::kRw);
    user = user && (e & mm::x86_bits::kUser);
    nx = nx || (e & mm::x86_bits::kNx);
    const bool leaf = level == 1 || (level <= 3 && m_codec.huge(e));
    if (!leaf) {
      if (level >= 2 && level <= 4 && m_pwc[level]) {
        const Pfn next = m_codec.pfn(e);
        m_pwc[level]->insert(level, va, pcid, next, nullptr,
                             m_gens.gen ? m_gens.gen[next.value()] : 0);
      }
      table = m_codec.pfn(e);
      --level;
      continue;
    }
    // Leaf: permission checks (a user-mode access), then A/D update (locked RMW).
    if (!user) break;                        // supervisor page: protection fault
    if (kind == Access::kExec && nx) break;  // XD: instruction-fetch fault
    if (write && !rw) break;                 // write-protect fault
    uint64_t upd = m_codec.mkyoung(e);
    if (write) upd |= mm::x86_bits::kDirty;
    if (upd != e) {
      *ep = upd;
      ++ad_updates;
      lat += m_l1_cycles;
      e = upd;
    }
    const PageSize size = level == 1 ? PageSize::k4K : level == 2 ? PageSize::k2M : PageSize::k1G;
    const uint64_t bytes = page_bytes(size);
    Pfn base = m_codec.pfn(e);
    TlbEntry te = TlbEntry::for_page(va, size, base, pcid);
    te.writable = rw;
    te.user = user;
    te.executable = !nx;
    te.dirty = m_codec.dirty(e);
    te.global = e & mm::x86_bits::kGlobal;
    te.fill_id = m_gens.gen ? m_gens.gen[base.value()] : 0;
    (void)bytes;
    if (m_stlb && m_stlb->holds(size)) m_stlb->insert(te);
    fill_l1(te);
    walk_cycles_total += lat;
    m_walk_latency->sample(lat);
    return XlatResult{false, false, cycles + lat, te.translate(va).value()};
  }
  ++walk_faults;
  walk_cycles_total += lat;
  m_walk_latency->sample(lat);
  invalidate_entry(va, pcid);  // a page fault drops the faulting address's entries
  return XlatResult{true, write, cycles + lat};
}

void X86CoreMmu::invalidate_entry(VirtAddr va, uint16_t pcid) {
  entries_invalidated += m_l1d.invalidate_va(va, pcid, false);
  if (m_l1d_2m) entries_invalidated += m_l1d_2m->invalidate_va(va, pcid, false);
  if (m_stlb) entries_invalidated += m_stlb->invalidate_va(va, pcid, false);
}

uint64_t X86CoreMmu::invlpg(VirtAddr va, uint16_t pcid) {
  ++invlpg_count;
  const FreedBeforeInvalidateCheck check{m_gens.gen, m_stale_hook, m_stale_ctx, m_cpu};
  uint64_t n = m_l1d.invalidate_va(va, pcid, true, check);
  if (m_l1d_2m) n += m_l1d_2m->invalidate_va(va, pcid, true, check);
  if (m_stlb) n += m_stlb->invalidate_va(va, pcid, true, check);
  for (auto& p : m_pwc)
    if (p) p->invalidate_asid(pcid, check);
  entries_invalidated += n;
  return n;
}

uint64_t X86CoreMmu::flush_pcid(uint16_t pcid) {
  ++pcid_flushes;
  uint64_t n = m_l1d.invalidate_asid(pcid);
  if (m_l1d_2m) n += m_l1d_2m->invalidate_asid(pcid);
  if (m_stlb) n += m_stlb->invalidate_asid(pcid);
  for (auto& p : m_pwc)
    if (p) p->invalidate_asid(pcid);
  entries_invalidated += n;
  return n;
}

uint64_t X86CoreMmu::apply(const Invalidation& inv) {
  switch (inv.kind) {
    case Invalidation::Kind::kInvlpg:
      return invlpg(inv.va, inv.pcid);
    case Invalidation::Kind::kCr3Write:
    case Invalidation::Kind::kInvpcidContext:
      if (inv.noflush) return 0;
      return flush_pcid(inv.pcid);
    default:
      break;
  }
  auto pred = [&](const TlbEntry& e) { return inv.matches(e); };
  uint64_t n = m_l1d.invalidate_if(pred);
  if (m_l1d_2m) n += m_l1d_2m->invalidate_if(pred);
  if (m_stlb) n += m_stlb->invalidate_if(pred);
  for (auto& p : m_pwc)
    if (p) p->invalidate_if([&](const WalkCacheEntry& w) { return inv.drops_walk_cache_of(w.asid); });
  entries_invalidated += n;
  return n;
}

}  // namespace tlbsim::x86
