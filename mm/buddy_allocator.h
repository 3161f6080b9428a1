// Binary buddy allocator over physical page frames, mirroring Linux mm/page_alloc.c
// (one zone, one migratetype, no per-CPU lists, no watermarks, no fallback).
//
// Invariants every method keeps and relies on:
//  - Every frame in [0, nr_frames) lies in exactly one block, free or allocated. A block of
//    order k starts at a multiple of 2^k and has k <= max_order.
//  - Only a block's head frame carries state: "free, order k" while the block is on free
//    list k (Linux: PageBuddy + buddy_order()), "allocated, order k" while it is handed out.
//    Every other frame is a tail. The allocated mark is what lets free() reject double frees,
//    misaligned frees and frees with the wrong order.
//  - No two free buddies of the same order coexist: free() coalesces as far as it can
//    (__free_one_page()); alloc() only splits (expand()).
//  - Free lists are LIFO: alloc() takes the head; free() and the split remainders go to the
//    head. The initial blocks are appended in ascending pfn order (Linux hands boot memory
//    over with FPI_TO_TAIL), so a fresh allocator gives out the lowest frames first.
//
// Memory: 9 bytes per frame (a state byte, and 32-bit prev/next links that are only written
// while the frame heads a free block, so untouched link pages are never faulted in).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>

#include "base/addr.h"

namespace tlbsim::mm {

class BuddyAllocator {
 public:
  /// Largest max_order accepted: a block must be addressable with a 32-bit frame index.
  static constexpr unsigned kMaxOrderLimit = 31;
  /// PUD order on 4 KiB pages: 1 GiB blocks.
  static constexpr unsigned kDefaultMaxOrder = 18;
  /// Largest pool: frame indices are 32-bit and one value marks the end of a free list.
  static constexpr uint64_t kMaxFrames = (uint64_t{1} << 32) - 1;

  /**
   * BuddyAllocator - a pool of frames [0, @nr_frames), all free.
   * @nr_frames: pool size in 4 KiB frames, 1..kMaxFrames; need not be a power of two.
   * @max_order: largest block order, 0..kMaxOrderLimit (Linux MAX_PAGE_ORDER, inclusive).
   *
   * Seeds the free lists with the largest naturally aligned blocks that fit, lowest first.
   * Throws std::invalid_argument on an out-of-range argument.
   */
  explicit BuddyAllocator(uint64_t nr_frames, unsigned max_order = kDefaultMaxOrder);

  BuddyAllocator(const BuddyAllocator&) = delete;
  BuddyAllocator& operator=(const BuddyAllocator&) = delete;
  BuddyAllocator(BuddyAllocator&&) noexcept = default;
  BuddyAllocator& operator=(BuddyAllocator&&) noexcept = default;

  /**
   * alloc - allocate 2^@order contiguous, naturally aligned frames.
   * @order: 0..max_order().
   *
   * Mirrors mm/page_alloc.c:__rmqueue_smallest(): takes the head of the smallest non-empty
   * free list of order >= @order, keeps its lowest 2^@order frames and puts the upper halves
   * back on the free lists (expand()). O(max_order).
   *
   * Return: the first frame of the block, or std::nullopt when no free block is large
   * enough (counted in nr_failed_allocs()) or @order > max_order() (not counted; Linux
   * warns and fails). The caller decides whether to retry with a smaller order.
   */
  std::optional<Pfn> alloc(unsigned order);

  /**
   * free - return a block obtained from alloc() or split().
   * @pfn: first frame of the block.
   * @order: the order it was allocated (or split) with.
   *
   * Mirrors mm/page_alloc.c:__free_one_page(): merges with the buddy while the buddy is a
   * free block of the same order, then puts the result at the head of its free list.
   * O(max_order).
   *
   * Throws std::logic_error, leaving the allocator unchanged, if [@pfn, @pfn + 2^@order) is
   * not exactly one allocated block: double free, misaligned pfn, wrong order, a frame
   * outside the pool, or a piece of a block that was never split().
   */
  void free(Pfn pfn, unsigned order);

  /**
   * split - turn one allocated block into 2^(@order - @new_order) allocated blocks.
   * @pfn: first frame of a block allocated with @order.
   * @order: its current order.
   * @new_order: the order of the pieces, 0..@order.
   *
   * The allocator's side of mm/page_alloc.c:split_page() and of splitting a large folio:
   * afterwards each piece is freed on its own with free(piece, @new_order).
   * O(2^(@order - @new_order)). Throws std::logic_error like free().
   */
  void split(Pfn pfn, unsigned order, unsigned new_order);

  /// Number of frames in the pool.
  uint64_t nr_frames() const { return m_nr_frames; }
  /// Largest block order (inclusive).
  unsigned max_order() const { return m_max_order; }
  /// Number of free frames (Linux NR_FREE_PAGES).
  uint64_t nr_free_pages() const { return m_nr_free_pages; }
  /// Number of free blocks of exactly @order (Linux free_area[order].nr_free); 0 above max_order.
  uint64_t nr_free(unsigned order) const { return order <= m_max_order ? m_nr_free[order] : 0; }

  /**
   * is_free - whether @pfn lies inside a free block. O(max_order).
   * Return: false for an allocated frame and for a frame outside the pool.
   */
  bool is_free(Pfn pfn) const;

  /// Order of the largest free block, or -1 when nothing is free.
  int largest_free_order() const;

  /**
   * unusable_free_index - fraction of free memory unusable for an allocation of @order.
   *
   * Mirrors mm/vmstat.c:unusable_free_index() (/sys/kernel/debug/extfrag/unusable_index):
   * (free pages - free pages in blocks of order >= @order) / free pages, as an exact
   * fraction rather than Linux's thousandths. 0 = no fragmentation; 1 when nothing is free
   * or nothing free is large enough (always 1 above max_order).
   */
  double unusable_free_index(unsigned order) const;

  /**
   * check_invariants - verify every invariant listed at the top of this file. O(nr_frames).
   * For tests and debugging; throws std::logic_error naming the first violation.
   */
  void check_invariants() const;

  /// Successful alloc() calls of @order.
  uint64_t nr_allocs(unsigned order) const { return counter(m_allocs, order); }
  /// free() calls of @order (blocks returned, before coalescing).
  uint64_t nr_frees(unsigned order) const { return counter(m_frees, order); }
  /// alloc() calls of @order that found no large enough block.
  uint64_t nr_failed_allocs(unsigned order) const { return counter(m_failed_allocs, order); }
  /// Blocks halved by alloc() (one per expand() step).
  uint64_t nr_splits() const { return m_splits; }
  /// Buddy pairs coalesced by free() (one per __free_one_page() merge step).
  uint64_t nr_merges() const { return m_merges; }

 private:
  using OrderArray = std::array<uint64_t, kMaxOrderLimit + 1>;

  /// Intrusive free-list links, meaningful only while the frame heads a free block.
  struct Link {
    uint32_t prev;
    uint32_t next;
  };

  static uint64_t counter(const OrderArray& a, unsigned order) {
    return order <= kMaxOrderLimit ? a[order] : 0;
  }
  void add_to_free_list(uint32_t pfn, unsigned order);
  void del_from_free_list(uint32_t pfn, unsigned order);
  /// Throws unless [pfn, pfn + 2^order) is exactly one allocated block.
  void check_allocated_block(const char* op, Pfn pfn, unsigned order) const;

  uint64_t m_nr_frames;
  unsigned m_max_order;
  /// Per frame: 0 for a tail, else a free/allocated flag | order of the block it heads.
  std::unique_ptr<uint8_t[]> m_state;
  /// Per frame: prev/next in its free list (kNil-terminated), valid only for free heads.
  std::unique_ptr<Link[]> m_links;
  /// Head of each free list, kNil when empty.
  std::array<uint32_t, kMaxOrderLimit + 1> m_free_head;
  /// Bit k set iff free list k is non-empty: alloc() finds its order with one ctz.
  uint32_t m_nonempty_orders = 0;
  /// Free blocks per order.
  OrderArray m_nr_free{};
  /// Free frames in all orders.
  uint64_t m_nr_free_pages = 0;

  OrderArray m_allocs{};         ///< successful alloc() per order
  OrderArray m_frees{};          ///< free() per order
  OrderArray m_failed_allocs{};  ///< alloc() that found nothing, per order
  uint64_t m_splits = 0;         ///< expand() steps
  uint64_t m_merges = 0;         ///< coalescing steps in free()
};

}  // namespace tlbsim::mm
