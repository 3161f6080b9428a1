// Buddy allocator hot-path costs. "Steady" pairs find a block of the requested order on its
// free list and free it without merging (its buddy stays allocated): the common case on a
// warm, busy pool. "FromFreshPool" pairs split a 1 GiB block down and merge it back every
// time: the worst case for the default max_order 18.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "mm/buddy_allocator.h"

namespace tlbsim::mm {
namespace {

constexpr uint64_t kFrames4GiB = uint64_t{1} << 20;
constexpr uint64_t kFrames16GiB = uint64_t{1} << 22;

void alloc_free_steady(benchmark::State& state) {
  const auto order = static_cast<unsigned>(state.range(0));
  BuddyAllocator buddy(kFrames4GiB);
  // Pin the lower buddy so the upper one sits on the order's free list and never merges.
  const auto pinned = buddy.alloc(order);
  benchmark::DoNotOptimize(pinned);
  for (auto _ : state) {
    const std::optional<Pfn> pfn = buddy.alloc(order);
    benchmark::DoNotOptimize(pfn);
    buddy.free(*pfn, order);
  }
  state.counters["splits_per_pair"] = benchmark::Counter(static_cast<double>(buddy.nr_splits()) /
                                                         static_cast<double>(state.iterations()));
}
BENCHMARK(alloc_free_steady)->Name("BuddyAllocFree/steady/order")->Arg(0)->Arg(9);

void alloc_free_fresh(benchmark::State& state) {
  const auto order = static_cast<unsigned>(state.range(0));
  BuddyAllocator buddy(kFrames4GiB);
  for (auto _ : state) {
    const std::optional<Pfn> pfn = buddy.alloc(order);
    benchmark::DoNotOptimize(pfn);
    buddy.free(*pfn, order);
  }
  state.counters["splits_per_pair"] = benchmark::Counter(static_cast<double>(buddy.nr_splits()) /
                                                         static_cast<double>(state.iterations()));
}
BENCHMARK(alloc_free_fresh)->Name("BuddyAllocFree/from_fresh_pool/order")->Arg(0)->Arg(9);

// Fill 1 GiB of a fresh 4 GiB pool with order-0 frames (pool teardown and rebuild untimed).
void alloc_262144_order0(benchmark::State& state) {
  constexpr int kAllocs = 262144;
  std::unique_ptr<BuddyAllocator> buddy;
  for (auto _ : state) {
    state.PauseTiming();
    buddy.reset();
    buddy = std::make_unique<BuddyAllocator>(kFrames4GiB);
    state.ResumeTiming();
    for (int i = 0; i < kAllocs; ++i) {
      benchmark::DoNotOptimize(buddy->alloc(0));
    }
  }
  state.SetItemsProcessed(state.iterations() * kAllocs);
}
BENCHMARK(alloc_262144_order0)
    ->Name("BuddyAlloc262144Order0From4GiB")
    ->Unit(benchmark::kMicrosecond);

// Random churn on a half-full 16 GiB pool: free a random held block, allocate a random
// order (falling back to smaller orders). Cache misses on the frame arrays dominate.
void random_churn(benchmark::State& state) {
  BuddyAllocator buddy(kFrames16GiB);
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<unsigned> pick_order(0, 9);
  std::vector<std::pair<Pfn, unsigned>> held;
  auto alloc_one = [&] {
    for (int order = static_cast<int>(pick_order(rng)); order >= 0; --order) {
      if (auto pfn = buddy.alloc(order)) {
        held.emplace_back(*pfn, order);
        return;
      }
    }
  };
  while (buddy.nr_free_pages() > kFrames16GiB / 2) {
    alloc_one();
  }
  for (auto _ : state) {
    const size_t victim = rng() % held.size();
    buddy.free(held[victim].first, held[victim].second);
    held[victim] = held.back();
    held.pop_back();
    alloc_one();
  }
}
BENCHMARK(random_churn)->Name("BuddyRandomChurn16GiB");

// Construction cost, as paid once per simulated machine.
void construct(benchmark::State& state) {
  for (auto _ : state) {
    BuddyAllocator buddy(static_cast<uint64_t>(state.range(0)));
    benchmark::DoNotOptimize(buddy.nr_free_pages());
  }
}
BENCHMARK(construct)
    ->Name("BuddyConstruct/frames")
    ->Arg(kFrames4GiB)
    ->Arg(kFrames16GiB)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace tlbsim::mm

BENCHMARK_MAIN();
