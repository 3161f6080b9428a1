#include "models/coherence_checker.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "base/log.h"
#include "mm/page_table.h"

namespace tlbsim {

namespace {
const char* const kWhat[] = {"stale TLB entry used", "stale walk-cache entry used",
                             "TLB entry alive across break-before-make",
                             "TLB entry outlived its frame until a by-VA invalidation",
                             "TLB entry granted what the current PTE does not",
                             "frame freed while a TLB still held a live translation to it",
                             "page table freed while a walk cache still pointed to it"};

unsigned order_of(PageSize size) { return page_shift(size) - kPageShift; }
}  // namespace

void CoherenceChecker::report(unsigned cpu, VirtAddr va, Pfn frame, StaleKind kind) {
  const uint64_t pfn = frame.value();
  const char* what = m_what[m_freed_by[pfn]];
  const char* freed_by = kind == StaleKind::kBreakBeforeMake ? "contpte_convert (no flush)"
                         : what                              ? what
                                                             : "?";
  record(StaleTlbViolation{cpu, va.value(), pfn, freed_by, kind});
}

uint8_t CoherenceChecker::intern(const char* what) {
  // The kernel names its free paths with string literals: a handful of pointers.
  for (size_t i = 1; i < m_what.size(); ++i)
    if (m_what[i] == what) return static_cast<uint8_t>(i);
  if (m_what.size() > 255) return 0;
  m_what.push_back(what);
  return static_cast<uint8_t>(m_what.size() - 1);
}

uint32_t& CoherenceChecker::cached(PageSize size, Pfn pfn) {
  std::vector<uint32_t>& v = m_cached[static_cast<size_t>(size)];
  if (v.empty()) v.assign((m_gen.size() >> order_of(size)) + 1, 0);
  return v[pfn.value() >> order_of(size)];
}

bool CoherenceChecker::filled(unsigned cpu, const TlbEntry& e) {
  if (m_live && !m_live->may_use(cpu, e.asid, false)) return false;
  ++cached(e.size, e.pfn);
  ++m_tracked;
  return true;
}

void CoherenceChecker::left(const TlbEntry& e) {
  --cached(e.size, e.pfn);
  --m_tracked;
}

bool CoherenceChecker::filled(unsigned cpu, const WalkCacheEntry& e) {
  if (m_live && !m_live->may_use(cpu, e.asid, true)) return false;
  ++m_cached[0][e.table.value()];
  ++m_tracked;
  return true;
}

void CoherenceChecker::left(const WalkCacheEntry& e) {
  --m_cached[0][e.table.value()];
  --m_tracked;
}

void CoherenceChecker::attach(unsigned cpu, Tlb& t) {
  if (cpu >= m_structures.size()) m_structures.resize(cpu + 1);
  m_structures[cpu].tlbs.push_back(&t);
}

void CoherenceChecker::attach(unsigned cpu, WalkCache& w) {
  if (cpu >= m_structures.size()) m_structures.resize(cpu + 1);
  m_structures[cpu].walk_caches.push_back(&w);
}

void CoherenceChecker::retire(unsigned cpu, uint16_t tag) {
  if (!m_live || m_tracked == 0 || cpu >= m_structures.size()) return;
  const bool leaf = m_live->may_use(cpu, tag, false);
  const bool walk = m_live->may_use(cpu, tag, true);
  CpuStructures& s = m_structures[cpu];
  if (!leaf)
    for (Tlb* t : s.tlbs)
      m_retired += t->untrack_if([tag](const TlbEntry& e) { return !e.global && e.asid == tag; });
  if (!walk)
    for (WalkCache* w : s.walk_caches)
      m_retired += w->untrack_if([tag](const WalkCacheEntry& e) { return e.asid == tag; });
}

void CoherenceChecker::retire_everywhere(uint16_t tag) {
  for (unsigned c = 0; c < m_structures.size(); ++c) retire(c, tag);
}

void CoherenceChecker::on_frames_freed(Pfn pfn, uint64_t nr, const char* what) {
  const uint8_t w = intern(what);
  for (uint64_t i = 0; i < nr; ++i) {
    ++m_gen[pfn.value() + i];
    m_freed_by[pfn.value() + i] = w;
  }
  m_frames_freed += nr;
  if (m_tracked == 0 || nr == 0) return;
  uint64_t live = 0;
  const uint32_t* base = m_cached[0].data() + pfn.value();
  for (uint64_t i = 0; i < nr; ++i) live += base[i];
  for (size_t s = 1; s < kNumPageSizes; ++s) {
    const std::vector<uint32_t>& v = m_cached[s];
    if (v.empty()) continue;
    const unsigned o = order_of(static_cast<PageSize>(s));
    for (uint64_t b = pfn.value() >> o; b <= (pfn.value() + nr - 1) >> o; ++b) live += v[b];
  }
  if (live) report_freed_while_cached(pfn, nr, live);
}

void CoherenceChecker::report_freed_while_cached(Pfn pfn, uint64_t nr, uint64_t expected) {
  // Rare (a broken kernel): find the entries by scanning every structure, stop
  // counting them (a later free of the same frame must not report them again), then
  // report each — the CPU, the address and the frame it still translates to.
  const uint64_t first = pfn.value();
  const uint64_t last = first + nr - 1;
  std::vector<StaleTlbViolation> found;
  const char* what = m_what[m_freed_by[first]];
  const std::string freed_by = what ? what : "?";
  for (unsigned cpu = 0; cpu < m_structures.size(); ++cpu) {
    for (Tlb* t : m_structures[cpu].tlbs)
      t->untrack_if([&](const TlbEntry& e) {
        const uint64_t lo = e.pfn.value();
        const uint64_t hi = lo + (e.bytes() >> kPageShift) - 1;
        if (hi < first || lo > last) return false;
        const uint64_t f = std::max(lo, first);
        found.push_back(StaleTlbViolation{cpu, e.base().value() + ((f - lo) << kPageShift), f,
                                          freed_by + "; still in " + t->geometry().name,
                                          StaleKind::kFreedWhileCached});
        return true;
      });
    for (WalkCache* wc : m_structures[cpu].walk_caches)
      wc->untrack_if([&](const WalkCacheEntry& e) {
        if (e.table.value() < first || e.table.value() > last) return false;
        found.push_back(StaleTlbViolation{cpu,
                                          e.base(wc->geometry().level_shift[e.level]).value(),
                                          e.table.value(),
                                          freed_by + "; still in " + wc->geometry().name,
                                          StaleKind::kTableFreedWhileCached});
        return true;
      });
  }
  if (found.size() != expected)
    throw std::logic_error("coherence checker: " + std::to_string(expected) +
                           " live cached translations counted for frames [" +
                           std::to_string(first) + ", " + std::to_string(last) + "], " +
                           std::to_string(found.size()) + " found");
  for (StaleTlbViolation& v : found) record(std::move(v));
}

void CoherenceChecker::record(StaleTlbViolation v) {
  ++m_violations;
  if (v.kind == StaleKind::kWalkCache) ++m_walk_cache_violations;
  if (v.kind == StaleKind::kBreakBeforeMake) ++m_bbm_violations;
  if (v.kind == StaleKind::kFreedBeforeInvalidate) ++m_freed_before_invalidate;
  if (v.kind == StaleKind::kPermission) ++m_permission_violations;
  if (v.kind == StaleKind::kFreedWhileCached || v.kind == StaleKind::kTableFreedWhileCached)
    ++m_freed_while_cached;
  const char* what = kWhat[static_cast<size_t>(v.kind)];
  if (m_first.size() < 16) {
    log::get("coherence")->warn("{}: cpu {} va {:#x} frame {:#x}: {}", what, v.cpu, v.va, v.pfn,
                                v.freed_by);
    m_first.push_back(v);
  }
  if (m_fail_fast) {
    char where[96];
    std::snprintf(where, sizeof where, ": cpu %u va %#llx frame %#llx (", v.cpu,
                  static_cast<unsigned long long>(v.va), static_cast<unsigned long long>(v.pfn));
    throw CoherenceStop(std::string(what) + where + v.freed_by + ")");
  }
}

void CoherenceChecker::check_permission(unsigned cpu, VirtAddr va, Access kind,
                                        const TlbEntry& e, Pfn root) {
  // The walk the hardware would do now, from the same root, with the rights
  // combined over the levels as the walkers do (x86: R/W and U/S at every level, NX
  // at any; arm64 table descriptors carry no restrictions in Linux's tables). Each
  // CPU remembers the PMD entry of its last walk that reached a PTE table: while
  // that entry is unchanged and its table frame was not freed, the PTE table is the
  // same and only the PTE is read (a walk cache for the checker; hits are hot).
  if (cpu >= m_memo.size()) {
    m_memo.resize(cpu + 1);
    m_page_memo.resize(cpu + 1);
  }
  // Page tables only change inside kernel calls: the same page, frame and access
  // as the last check on this CPU, with no call begun or ended since, is fine.
  PageMemo& last = m_page_memo[cpu];
  const uint8_t bit = uint8_t(1u << static_cast<unsigned>(kind));
  const uint64_t vpage = va.value() >> kPageShift;
  if (last.vpage == vpage && last.epoch == m_epoch && last.root == root &&
      last.frame == e.pfn_for(va) && (last.allowed & bit))
    return;
  const bool x86 = m_codec.arch() == mm::Arch::kX86_64;
  PmdMemo& memo = m_memo[cpu];
  const uint64_t region = va.value() >> mm::level_shift(2);
  Pfn table = root;
  unsigned level = m_levels;
  uint64_t leaf = 0;
  bool rw = true, nx = false;
  if (memo.pmdp && memo.root == root && memo.region == region &&
      m_gen[memo.pmd_table.value()] == memo.pmd_gen && *memo.pmdp == memo.pmd) {
    table = m_codec.pfn(memo.pmd);
    level = 1;
    rw = memo.rw;
    nx = memo.nx;
  }
  for (;;) {
    if (!m_pm->is_page_table(table)) break;
    const uint64_t pa = (table.value() << kPageShift) + uint64_t{8} * mm::level_index(va, level);
    const uint64_t* dp = m_pm->entry_ptr(PhysAddr(pa));
    const uint64_t d = *dp;
    if (!m_codec.valid(d)) break;
    if (x86) {
      rw = rw && (d & mm::x86_bits::kRw);
      nx = nx || (d & mm::x86_bits::kNx);
    }
    if (level == 1 || m_codec.huge(d)) {
      leaf = d;
      break;
    }
    if (level == 2) memo = PmdMemo{root, region, table, m_gen[table.value()], dp, d, rw, nx};
    table = m_codec.pfn(d);
    --level;
  }
  const char* why = nullptr;
  if (!leaf) {
    why = "the PTE is not valid (not present, or PROT_NONE)";
  } else {
    const uint64_t off = (va.value() & (mm::level_entry_size(level) - 1)) >> kPageShift;
    const bool writable = x86 ? rw : m_codec.write(leaf);
    const bool exec = x86 ? !nx : !(leaf & mm::arm64_bits::kUxn);
    if (m_codec.pfn(leaf) + off != e.pfn_for(va)) {
      why = "the PTE maps another frame";
    } else if (kind == Access::kWrite && !writable) {
      why = "a store through a read-only PTE";
    } else if (kind == Access::kExec && !exec) {
      why = "a fetch through a no-exec PTE";
    }
  }
  if (!why) {
    if (last.vpage != vpage || last.epoch != m_epoch || last.root != root ||
        last.frame != e.pfn_for(va))
      last = PageMemo{root, vpage, m_epoch, e.pfn_for(va), 0};
    last.allowed |= bit;
    return;
  }
  if (m_activity->call_in_flight(cpu)) {
    ++m_permission_in_flight;
    return;
  }
  record(StaleTlbViolation{cpu, va.value(), e.pfn_for(va).value(),
                           std::string(why) + "; " + m_activity->describe(cpu),
                           StaleKind::kPermission});
}

}  // namespace tlbsim
