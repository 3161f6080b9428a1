// Host cost of Tlb::lookup, the simulator's hottest function. One iteration = one
// lookup (plus an insert on a miss, as the MMU model does), so the reported time per
// iteration is ns/lookup. Run with --benchmark_min_time=1 for stable numbers.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "models/tlb/tlb.h"

namespace tlbsim {
namespace {

// Golden Cove-like L1 DTLB: 96 entries, 6 ways, 4 KiB pages.
TlbGeometry l1_dtlb() {
  return TlbGeometry{.name = "dtlb",
                     .entries = 96,
                     .ways = 6,
                     .sizes = {PageSize::k4K},
                     .repl = Replacement::kLru,
                     .hit_latency_cycles = 0,
                     .seed = 1};
}

// Golden Cove-like STLB: 2048 entries, 16 ways, 4 KiB + 2 MiB.
TlbGeometry stlb() {
  return TlbGeometry{.name = "stlb",
                     .entries = 2048,
                     .ways = 16,
                     .sizes = {PageSize::k4K, PageSize::k2M},
                     .repl = Replacement::kLru,
                     .hit_latency_cycles = 12,
                     .seed = 1};
}

// Neoverse N1-like L1 DTLB: 48 entries, fully associative, five sizes.
TlbGeometry n1_l1_dtlb() {
  return TlbGeometry{
      .name = "dtlb",
      .entries = 48,
      .ways = 48,
      .sizes = {PageSize::k4K, PageSize::k16K, PageSize::k64K, PageSize::k2M, PageSize::k32M},
      .repl = Replacement::kLru,
      .hit_latency_cycles = 1,
      .seed = 1};
}

void fill_on_miss(Tlb& tlb, VirtAddr va, PageSize size) {
  tlb.insert(TlbEntry::for_page(va, size, Pfn(va.value() >> 12), 1));
}

// Sequential 64-byte accesses over 1 GiB: one miss per 4 KiB page, ~98.4% hits.
void run_sequential(benchmark::State& state, TlbGeometry g, PageSize fill) {
  Tlb tlb(g);
  uint64_t va = 0x7f0000000000;
  const uint64_t start = va;
  for (auto _ : state) {
    const TlbEntry* e = tlb.lookup(VirtAddr(va), 1);
    if (e == nullptr) {
      fill_on_miss(tlb, VirtAddr(va).align_down(page_bytes(fill)), fill);
    }
    benchmark::DoNotOptimize(e);
    va += 64;
    if (va == start + (uint64_t{1} << 30)) {
      va = start;
    }
  }
  state.counters["hit_rate"] = static_cast<double>(tlb.stats.hits) / tlb.stats.lookups;
  state.SetItemsProcessed(state.iterations());
}

void BM_L1DtlbSequential(benchmark::State& state) {
  run_sequential(state, l1_dtlb(), PageSize::k4K);
}
BENCHMARK(BM_L1DtlbSequential);

// Pure hits without page locality: @resident pages filled, then visited with a stride
// of 7 pages so that no two consecutive lookups share a page.
void run_hit_only(benchmark::State& state, TlbGeometry g, uint64_t resident) {
  Tlb tlb(g);
  const uint64_t start = 0x7f0000000000;
  for (uint64_t p = 0; p < resident; ++p) {
    fill_on_miss(tlb, VirtAddr(start + p * 4096), PageSize::k4K);
  }
  uint64_t p = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(tlb.lookup(VirtAddr(start + p * 4096 + 8), 1));
    p += 7;
    if (p >= resident) {
      p -= resident;
    }
  }
  state.counters["hit_rate"] = static_cast<double>(tlb.stats.hits) / tlb.stats.lookups;
  state.SetItemsProcessed(state.iterations());
}

void BM_L1DtlbHitOnly(benchmark::State& state) { run_hit_only(state, l1_dtlb(), 64); }
BENCHMARK(BM_L1DtlbHitOnly);

void BM_N1L1DtlbHitOnly(benchmark::State& state) { run_hit_only(state, n1_l1_dtlb(), 40); }
BENCHMARK(BM_N1L1DtlbHitOnly);

void BM_N1L1DtlbSequential(benchmark::State& state) {
  run_sequential(state, n1_l1_dtlb(), PageSize::k4K);
}
BENCHMARK(BM_N1L1DtlbSequential);

void BM_N1L1DtlbSequentialContPte(benchmark::State& state) {
  run_sequential(state, n1_l1_dtlb(), PageSize::k64K);
}
BENCHMARK(BM_N1L1DtlbSequentialContPte);

// Random 4 KiB pages over a footprint of state.range(0) pages (2048 = the STLB's reach,
// so most lookups hit; 16384 = 8x the reach). Addresses are drawn before timing.
void BM_StlbRandom(benchmark::State& state) {
  Tlb tlb(stlb());
  const uint64_t pages = static_cast<uint64_t>(state.range(0));
  std::mt19937_64 rng(1);
  std::vector<uint64_t> vas(1 << 16);
  for (uint64_t& va : vas) {
    va = 0x7f0000000000 + (rng() % pages) * 4096 + (rng() & 4095);
  }
  size_t i = 0;
  for (auto _ : state) {
    const VirtAddr va(vas[i]);
    const TlbEntry* e = tlb.lookup(va, 1);
    if (e == nullptr) {
      fill_on_miss(tlb, va.page_align_down(), PageSize::k4K);
    }
    benchmark::DoNotOptimize(e);
    i = (i + 1) & (vas.size() - 1);
  }
  state.counters["hit_rate"] = static_cast<double>(tlb.stats.hits) / tlb.stats.lookups;
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StlbRandom)->Arg(2048)->Arg(16384);

}  // namespace
}  // namespace tlbsim

BENCHMARK_MAIN();
