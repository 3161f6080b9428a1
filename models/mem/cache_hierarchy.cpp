#include "models/mem/cache_hierarchy.h"

#include <algorithm>

#include "models/machine_params.h"

namespace tlbsim {

CacheHierarchy::CacheHierarchy(const CacheParams& p, const std::vector<unsigned>& socket_of)
    : m_cpu(socket_of.size()),
      m_l1_cycles(p.l1d.cycles()),
      m_l2_cycles(p.l2.cycles()),
      m_llc_cycles(p.llc.cycles()),
      m_dram_cycles(p.dram_cycles()),
      m_stream_cycles(p.stream_line_cycles()) {
  unsigned sockets = 0;
  for (unsigned s : socket_of) sockets = std::max(sockets, s + 1);
  for (unsigned s = 0; s < sockets; ++s)
    m_llc.push_back(std::make_unique<TagCache>(p.llc.bytes().value, p.llc.ways()));
  m_window_shift = 0;
  while ((uint64_t{64} << m_window_shift) < p.prefetch_boundary().value) ++m_window_shift;
  for (size_t i = 0; i < m_cpu.size(); ++i) {
    PerCpu& c = m_cpu[i];
    c.l1.configure(p.l1d.bytes().value, p.l1d.ways());
    c.l2.configure(p.l2.bytes().value, p.l2.ways());
    c.llc = m_llc[socket_of[i]].get();
    c.streams.resize(p.prefetch_streams());
  }
}

CacheHierarchy::Result CacheHierarchy::beyond_l2(PerCpu& c, uint64_t line) {
  const bool llc_hit = c.llc->access(line);
  // Stream prefetcher, trained by L2 misses: a miss that continues a run arrived
  // ahead of the demand.
  if (!c.streams.empty()) {
    Stream* victim = &c.streams[0];
    for (Stream& s : c.streams) {
      if (s.next == line) {
        s.used = ++c.stream_clock;
        s.next = ((line + 1) >> m_window_shift) == (line >> m_window_shift) ? line + 1 : ~0ull;
        if (llc_hit && m_llc_cycles <= m_stream_cycles) return {m_llc_cycles, MemLevel::kLlc};
        return {m_stream_cycles, MemLevel::kStream};
      }
      if (s.used < victim->used) victim = &s;
    }
    if (((line + 1) >> m_window_shift) == (line >> m_window_shift)) {
      victim->next = line + 1;
      victim->used = ++c.stream_clock;
    }
  }
  if (llc_hit) return {m_llc_cycles, MemLevel::kLlc};
  return {m_dram_cycles, MemLevel::kDram};
}

uint32_t CacheHierarchy::fill_page(unsigned cpu, uint64_t page_pa) {
  PerCpu& c = m_cpu[cpu];
  uint32_t missing = 0;
  const uint64_t first = page_pa >> 6;
  for (uint64_t l = first; l < first + 64; ++l) {
    if (!c.l1.access(l) && !c.l2.access(l) && !c.llc->access(l)) ++missing;
  }
  return missing;
}

void CacheHierarchy::clear() {
  for (auto& c : m_cpu) {
    c.l1.clear();
    c.l2.clear();
    for (auto& s : c.streams) s = Stream{};
  }
  for (auto& l : m_llc) l->clear();
}

}  // namespace tlbsim
