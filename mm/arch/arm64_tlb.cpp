#include "mm/arch/arm64_tlb.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace tlbsim::mm::arm64 {

FlushRangePlan flush_tlb_range_ops(uint16_t asid, uint64_t start, uint64_t end, uint64_t stride,
                                   bool last_level, uint8_t tlb_level, bool has_range,
                                   unsigned max_dvm_ops, std::vector<TlbiOp>& out) {
  // Mirrors arch/arm64/include/asm/tlbflush.h:__flush_tlb_range_nosync().
  out.clear();
  FlushRangePlan plan;
  start &= ~(stride - 1);                    // round_down(start, stride)
  end = (end + stride - 1) & ~(stride - 1);  // round_up(end, stride)
  uint64_t pages = (end - start) >> 12;
  if ((!has_range && (end - start) >= uint64_t{max_dvm_ops} * stride) ||
      pages > kMaxTlbiRangePages) {
    plan.asid_flush = true;
    return plan;
  }
  // __flush_tlb_range_op(): scale starts at 3 and decreases.
  const TlbiKind single = last_level ? TlbiKind::kVale1is : TlbiKind::kVae1is;
  const TlbiKind ranged = last_level ? TlbiKind::kRvale1is : TlbiKind::kRvae1is;
  int scale = 3;
  while (pages > 0) {
    if (!has_range || pages == 1) {
      out.push_back(TlbiOp{single, tlb_level, asid, start, 1});
      start += stride;
      pages -= std::min<uint64_t>(pages, stride >> 12);
      continue;
    }
    const int num = tlbi_range_num(pages, scale);
    if (num >= 0) {
      const uint64_t n = tlbi_range_pages(num, scale);
      out.push_back(TlbiOp{ranged, tlb_level, asid, start, n});
      start += n << 12;
      pages -= n;
    }
    --scale;
  }
  return plan;
}

uint8_t tlb_get_level(bool freed_tables, bool cleared_ptes, bool cleared_pmds, bool cleared_puds,
                      bool cleared_p4ds) {
  // Mirrors arch/arm64/include/asm/tlb.h:tlb_get_level().
  if (freed_tables) return kTtlUnknown;
  const int n = cleared_ptes + cleared_pmds + cleared_puds + cleared_p4ds;
  if (n != 1) return kTtlUnknown;
  if (cleared_ptes) return 3;
  if (cleared_pmds) return 2;
  if (cleared_puds) return 1;
  return 0;
}

void AsidAllocator::LiveSet::erase(uint16_t a) {
  auto it = std::find(asids.begin(), asids.end(), a);
  if (it != asids.end()) asids.erase(it);
}

uint16_t AsidAllocator::alloc(bool* rollover) {
  *rollover = false;
  while (m_next < m_used.size() && m_used[m_next]) ++m_next;
  if (m_next >= m_used.size()) {
    // new_context() → flush_context(): a new generation; live mms keep theirs.
    *rollover = true;
    ++m_generation;
    std::fill(m_used.begin(), m_used.end(), false);
    m_used[0] = true;
    for (uint16_t a : m_live.asids) m_used[a] = true;
    m_next = 1;
    while (m_next < m_used.size() && m_used[m_next]) ++m_next;
    if (m_next >= m_used.size())
      throw std::runtime_error("arm64 ASID space exhausted: " + std::to_string(m_used.size() - 1) +
                               " live address spaces");
  }
  const auto asid = static_cast<uint16_t>(m_next++);
  m_used[asid] = true;
  m_live.insert(asid);
  return asid;
}

}  // namespace tlbsim::mm::arm64
