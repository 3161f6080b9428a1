// Host cost of the kernel's two bulk paths on InstantArch with one CPU: faulting in
// 1 GiB of 4 KiB anonymous folios (one write fault per page), and fork() of that
// process (dup_mmap copying 262,144 PTEs); also with 64 KiB mTHP folios (one fault
// and one batched fork copy per 16 PTEs). Acceptance (issue 3): fault ≤ 0.1 s,
// fork ≤ 0.011 s per GiB. Time is measured around the path only (manual time):
// building the machine, faulting before a fork and tearing down are excluded.
// Reported: the time per iteration (= per GiB) and ns_per_page.
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "mm/instant_arch.h"
#include "mm/kernel.h"

namespace tlbsim::mm {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kPages = kGiB >> kPageShift;

enum Variant : int64_t { kLinux615, kLinux67, kLinux615Mthp64k };

/// One machine: 1.25 GiB of memory, one CPU, the given kernel profile.
struct Machine {
  explicit Machine(int64_t variant) {
    if (variant == kLinux615Mthp64k) {
      profile.thp.hugepages_64kB.set("always");
      step = 16;
    }
    if (variant == kLinux67) {
      profile.rmap_batching.set(false);
      profile.zap_batching.set(false);
      profile.fork_batching.set(false);
      profile.mm_id.set(false);
      profile.cow_reuse_large.set(false);
    }
    stats = std::make_unique<StatGroup>("");
    pm = std::make_unique<PhysMem>(kGiB + (kGiB >> 2));
    X86ArchConfig cfg;
    cfg.nr_cpus = 1;
    arch = std::make_unique<InstantArch>(cfg, stats.get());
    kernel = std::make_unique<Kernel>(profile, *pm, *arch, stats.get());
    mm = &kernel->mm_create(ctx);
    arch->switch_mm(ctx, *mm);
    MmapArgs a;
    a.len = kGiB;
    base = VirtAddr(static_cast<uint64_t>(kernel->sys_mmap(ctx, *mm, a)));
  }
  /// One write fault per folio: per page, or per 64 KiB with the mTHP variant.
  void fault_all() {
    for (uint64_t i = 0; i < kPages; i += step)
      if (kernel->handle_mm_fault(ctx, *mm, base + i * kPageSize, kFaultWrite) != FaultResult::kOk)
        throw std::runtime_error("fault failed");
  }

  KernelProfile profile;
  std::unique_ptr<StatGroup> stats;
  std::unique_ptr<PhysMem> pm;
  std::unique_ptr<InstantArch> arch;
  std::unique_ptr<Kernel> kernel;
  ExecContext ctx{0};
  Mm* mm = nullptr;
  VirtAddr base;
  uint64_t step = 1;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void report(benchmark::State& state, double total) {
  const double per_iter = total / static_cast<double>(state.iterations());
  state.counters["ns_per_page"] = per_iter * 1e9 / static_cast<double>(kPages);
  state.counters["s_per_GiB"] = per_iter;
}

void fault_1gib(benchmark::State& state) {
  double total = 0;
  for (auto _ : state) {
    Machine m(state.range(0));
    const auto t0 = std::chrono::steady_clock::now();
    m.fault_all();
    const double s = seconds_since(t0);
    state.SetIterationTime(s);
    total += s;
  }
  report(state, total);
}
BENCHMARK(fault_1gib)
    ->Name("Fault1GiB/order0/linux_6_7")
    ->Arg(kLinux67)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(fault_1gib)
    ->Name("Fault1GiB/order0/linux_6_15")
    ->Arg(kLinux615)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(fault_1gib)
    ->Name("Fault1GiB/order4_64k/linux_6_15")
    ->Arg(kLinux615Mthp64k)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

void fork_1gib(benchmark::State& state) {
  double total = 0;
  for (auto _ : state) {
    Machine m(state.range(0));
    m.fault_all();
    const auto t0 = std::chrono::steady_clock::now();
    Mm& child = m.kernel->dup_mmap(m.ctx, *m.mm);
    const double s = seconds_since(t0);
    state.SetIterationTime(s);
    total += s;
    if (child.rss(kMmAnonPages) != static_cast<int64_t>(kPages)) state.SkipWithError("short fork");
  }
  report(state, total);
}
BENCHMARK(fork_1gib)
    ->Name("Fork1GiB/order0/linux_6_7")
    ->Arg(kLinux67)
    ->UseManualTime()
    ->Iterations(5)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(fork_1gib)
    ->Name("Fork1GiB/order0/linux_6_15")
    ->Arg(kLinux615)
    ->UseManualTime()
    ->Iterations(5)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(fork_1gib)
    ->Name("Fork1GiB/order4_64k/linux_6_15")
    ->Arg(kLinux615Mthp64k)
    ->UseManualTime()
    ->Iterations(5)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tlbsim::mm

BENCHMARK_MAIN();
