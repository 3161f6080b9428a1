#include "mm/swap_device.h"

#include <stdexcept>

namespace tlbsim::mm {

uint64_t SwapDevice::alloc_slot(Pfn folio) {
  uint64_t slot;
  if (!m_free.empty()) {
    slot = m_free.back();
    m_free.pop_back();
  } else {
    slot = m_slots.size();
    m_slots.emplace_back();
  }
  m_slots[slot] = Slot{0, 0, true};
  ++m_stats.slots_used;
  add_cache(slot, folio);
  return slot;
}

uint32_t SwapDevice::put(uint64_t slot) {
  Slot& s = m_slots.at(slot);
  if (!s.used || s.count == 0) throw std::logic_error("swap_free of an unreferenced slot");
  const uint32_t left = --s.count;
  maybe_free(slot);
  return left;
}

void SwapDevice::add_cache(uint64_t slot, Pfn folio) {
  Slot& s = m_slots.at(slot);
  if (!s.used || s.cache) throw std::logic_error("add_to_swap_cache: slot not free for caching");
  s.cache = folio.value();
  m_folio_slot[folio.value()] = slot;
}

uint64_t SwapDevice::delete_cache(Pfn folio) {
  auto it = m_folio_slot.find(folio.value());
  if (it == m_folio_slot.end()) throw std::logic_error("delete_from_swap_cache: folio not cached");
  const uint64_t slot = it->second;
  m_folio_slot.erase(it);
  m_slots[slot].cache = 0;
  maybe_free(slot);
  return slot;
}

void SwapDevice::maybe_free(uint64_t slot) {
  Slot& s = m_slots[slot];
  if (s.count || s.cache) return;
  s.used = false;
  --m_stats.slots_used;
  m_free.push_back(slot);
}

}  // namespace tlbsim::mm
