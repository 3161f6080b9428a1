#include "mm/buddy_allocator.h"

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <string>

namespace tlbsim::mm {

namespace {

// Head-frame state byte: a flag and the block's order. Tails are 0.
constexpr uint8_t kTail = 0;
constexpr uint8_t kFreeHead = 0x80;
constexpr uint8_t kAllocatedHead = 0x40;
constexpr uint8_t kOrderBits = 0x3f;
static_assert(BuddyAllocator::kMaxOrderLimit <= kOrderBits);

constexpr uint32_t kNil = UINT32_MAX;
static_assert(BuddyAllocator::kMaxFrames <= kNil, "kNil must not be a valid frame index");

constexpr uint8_t free_head(unsigned order) { return static_cast<uint8_t>(kFreeHead | order); }
constexpr uint8_t allocated_head(unsigned order) {
  return static_cast<uint8_t>(kAllocatedHead | order);
}

[[noreturn, gnu::cold, gnu::noinline]] void fail(const char* op, Pfn pfn, unsigned order,
                                                 const char* why) {
  throw std::logic_error(std::string("BuddyAllocator::") + op + "(pfn " +
                         std::to_string(pfn.value()) + ", order " + std::to_string(order) +
                         "): " + why);
}

uint64_t checked_nr_frames(uint64_t nr_frames, unsigned max_order) {
  if (nr_frames == 0 || nr_frames > BuddyAllocator::kMaxFrames) {
    throw std::invalid_argument("BuddyAllocator: nr_frames " + std::to_string(nr_frames) +
                                " outside 1.." + std::to_string(BuddyAllocator::kMaxFrames));
  }
  if (max_order > BuddyAllocator::kMaxOrderLimit) {
    throw std::invalid_argument("BuddyAllocator: max_order " + std::to_string(max_order) +
                                " above " + std::to_string(BuddyAllocator::kMaxOrderLimit));
  }
  return nr_frames;
}

}  // namespace

BuddyAllocator::BuddyAllocator(uint64_t nr_frames, unsigned max_order)
    : m_nr_frames(checked_nr_frames(nr_frames, max_order)),
      m_max_order(max_order),
      m_state(std::make_unique<uint8_t[]>(nr_frames)),
      m_links(std::make_unique_for_overwrite<Link[]>(nr_frames)) {
  m_free_head.fill(kNil);
  // Like memblock_free_all(): hand memory over in the largest aligned blocks, appending
  // to the tails so that each free list runs in ascending pfn order.
  std::array<uint32_t, kMaxOrderLimit + 1> tail;
  tail.fill(kNil);
  for (uint64_t pfn = 0; pfn < nr_frames;) {
    unsigned order = std::min<unsigned>(m_max_order, std::bit_width(nr_frames - pfn) - 1);
    if (pfn != 0) {
      order = std::min<unsigned>(order, std::countr_zero(pfn));
    }
    const auto head = static_cast<uint32_t>(pfn);
    m_links[head] = {tail[order], kNil};
    if (tail[order] == kNil) {
      m_free_head[order] = head;
    } else {
      m_links[tail[order]].next = head;
    }
    tail[order] = head;
    m_state[head] = free_head(order);
    m_nonempty_orders |= uint32_t{1} << order;
    ++m_nr_free[order];
    pfn += uint64_t{1} << order;
  }
  m_nr_free_pages = nr_frames;
}

void BuddyAllocator::add_to_free_list(uint32_t pfn, unsigned order) {
  const uint32_t head = m_free_head[order];
  m_links[pfn] = {kNil, head};
  if (head != kNil) {
    m_links[head].prev = pfn;
  }
  m_free_head[order] = pfn;
  m_nonempty_orders |= uint32_t{1} << order;
  m_state[pfn] = free_head(order);
  ++m_nr_free[order];
}

void BuddyAllocator::del_from_free_list(uint32_t pfn, unsigned order) {
  const Link link = m_links[pfn];
  if (link.prev == kNil) {
    m_free_head[order] = link.next;
  } else {
    m_links[link.prev].next = link.next;
  }
  if (link.next != kNil) {
    m_links[link.next].prev = link.prev;
  }
  if (--m_nr_free[order] == 0) {
    m_nonempty_orders &= ~(uint32_t{1} << order);
  }
  m_state[pfn] = kTail;
}

std::optional<Pfn> BuddyAllocator::alloc(unsigned order) {
  if (order > m_max_order) {
    return std::nullopt;
  }
  const uint32_t candidates = m_nonempty_orders & (~uint32_t{0} << order);
  if (candidates == 0) {
    ++m_failed_allocs[order];
    return std::nullopt;
  }
  unsigned current = std::countr_zero(candidates);
  const uint32_t pfn = m_free_head[current];
  del_from_free_list(pfn, current);
  // expand(): keep the lowest part, free the upper half at each step down.
  while (current > order) {
    --current;
    add_to_free_list(pfn + (uint32_t{1} << current), current);
    ++m_splits;
  }
  m_state[pfn] = allocated_head(order);
  m_nr_free_pages -= uint64_t{1} << order;
  ++m_allocs[order];
  return Pfn(pfn);
}

void BuddyAllocator::check_allocated_block(const char* op, Pfn pfn, unsigned order) const {
  if (order > m_max_order) {
    fail(op, pfn, order, "order above max_order");
  }
  if (pfn.value() >= m_nr_frames) {
    fail(op, pfn, order, "frame outside the pool");
  }
  if ((pfn.value() & ((uint64_t{1} << order) - 1)) != 0) {
    fail(op, pfn, order, "pfn not aligned to the order");
  }
  const uint8_t state = m_state[pfn.value()];
  if (state == allocated_head(order)) [[likely]] {
    return;
  }
  if ((state & kAllocatedHead) != 0) {
    fail(op, pfn, order,
         ("block was allocated with order " + std::to_string(state & kOrderBits)).c_str());
  }
  if (is_free(pfn)) {
    fail(op, pfn, order, "double free: frame already free");
  }
  fail(op, pfn, order, "not the head of an allocated block (split it first)");
}

void BuddyAllocator::free(Pfn pfn, unsigned order) {
  check_allocated_block("free", pfn, order);
  auto head = static_cast<uint32_t>(pfn.value());
  m_state[head] = kTail;
  m_nr_free_pages += uint64_t{1} << order;
  ++m_frees[order];
  // Always to the head of the list: unlike Linux we do not apply buddy_merge_likely()'s
  // to-tail placement, so reuse order is purely LIFO.
  unsigned current = order;
  while (current < m_max_order) {
    const uint32_t buddy = head ^ (uint32_t{1} << current);
    if (buddy >= m_nr_frames || m_state[buddy] != free_head(current)) {
      break;
    }
    del_from_free_list(buddy, current);
    head &= buddy;
    ++current;
    ++m_merges;
  }
  add_to_free_list(head, current);
}

void BuddyAllocator::split(Pfn pfn, unsigned order, unsigned new_order) {
  check_allocated_block("split", pfn, order);
  if (new_order > order) {
    fail("split", pfn, order, "new_order above order");
  }
  const uint64_t end = pfn.value() + (uint64_t{1} << order);
  for (uint64_t piece = pfn.value(); piece < end; piece += uint64_t{1} << new_order) {
    m_state[piece] = allocated_head(new_order);
  }
}

bool BuddyAllocator::is_free(Pfn pfn) const {
  if (pfn.value() >= m_nr_frames) {
    return false;
  }
  // The block holding pfn starts at pfn rounded down to its order; a smaller rounding
  // lands on that head with a larger order, or on a tail.
  for (unsigned order = 0; order <= m_max_order; ++order) {
    const uint64_t head = pfn.value() & ~((uint64_t{1} << order) - 1);
    const uint8_t state = m_state[head];
    if (state != kTail && (state & kOrderBits) == order) {
      return (state & kFreeHead) != 0;
    }
  }
  return false;
}

int BuddyAllocator::largest_free_order() const {
  return m_nonempty_orders == 0 ? -1 : static_cast<int>(std::bit_width(m_nonempty_orders)) - 1;
}

double BuddyAllocator::unusable_free_index(unsigned order) const {
  if (m_nr_free_pages == 0) {
    return 1.0;
  }
  uint64_t suitable_pages = 0;
  for (unsigned o = order; o <= m_max_order; ++o) {
    suitable_pages += m_nr_free[o] << o;
  }
  return static_cast<double>(m_nr_free_pages - suitable_pages) /
         static_cast<double>(m_nr_free_pages);
}

void BuddyAllocator::check_invariants() const {
  auto violated = [](const std::string& what) {
    throw std::logic_error("BuddyAllocator invariant violated: " + what);
  };
  // Free lists: well linked, only free heads of their order, counts match.
  uint64_t listed_blocks = 0;
  uint64_t listed_pages = 0;
  for (unsigned order = 0; order <= kMaxOrderLimit; ++order) {
    const bool nonempty_bit = (m_nonempty_orders >> order) & 1;
    if (order > m_max_order) {
      if (m_free_head[order] != kNil || m_nr_free[order] != 0 || nonempty_bit) {
        violated("free list above max_order " + std::to_string(order));
      }
      continue;
    }
    uint64_t count = 0;
    uint32_t prev = kNil;
    for (uint32_t pfn = m_free_head[order]; pfn != kNil; pfn = m_links[pfn].next) {
      if (pfn >= m_nr_frames || count > m_nr_frames) {
        violated("free list " + std::to_string(order) + " runs outside the pool or loops");
      }
      if (m_state[pfn] != free_head(order) || m_links[pfn].prev != prev) {
        violated("frame " + std::to_string(pfn) + " badly linked on free list " +
                 std::to_string(order));
      }
      prev = pfn;
      ++count;
    }
    if (count != m_nr_free[order] || nonempty_bit != (count != 0)) {
      violated("free list " + std::to_string(order) + " count mismatch");
    }
    listed_blocks += count;
    listed_pages += count << order;
  }
  if (listed_pages != m_nr_free_pages) {
    violated("nr_free_pages does not match the free lists");
  }
  // Frames: tiled by aligned blocks with one head each; no uncoalesced free buddies.
  uint64_t free_heads = 0;
  for (uint64_t pfn = 0; pfn < m_nr_frames;) {
    const uint8_t state = m_state[pfn];
    const unsigned order = state & kOrderBits;
    const uint64_t size = uint64_t{1} << order;
    if (state == kTail || order > m_max_order || (pfn & (size - 1)) != 0 ||
        pfn + size > m_nr_frames) {
      violated("frame " + std::to_string(pfn) + " is not a valid block head");
    }
    for (uint64_t tail = pfn + 1; tail < pfn + size; ++tail) {
      if (m_state[tail] != kTail) {
        violated("frame " + std::to_string(tail) + " inside a block carries state");
      }
    }
    if ((state & kFreeHead) != 0) {
      ++free_heads;
      const uint64_t buddy = pfn ^ size;
      if (order < m_max_order && buddy < m_nr_frames && m_state[buddy] == state) {
        violated("free buddies " + std::to_string(pfn) + " and " + std::to_string(buddy) +
                 " not coalesced");
      }
    }
    pfn += size;
  }
  if (free_heads != listed_blocks) {
    violated("free block heads not all on free lists");
  }
}

}  // namespace tlbsim::mm
