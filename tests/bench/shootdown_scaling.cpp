// Shootdown-scaling experiment (one simulation per process; driven by
// tools/shootdown-scaling): CPU0 munmaps and re-faults one page in a loop while
// CPUs 1..N-1 run the same mm (touching their own pages), on x86_server or
// arm64_server. Reports the initiator's cycles per flush: x86 = ICR writes + own
// INVLPG + waiting for the last ack; arm64 = TLBI issue + DSB ISH (DVM queue
// included). hardware-costs.md §4.1 predicts x86 ≈ 1.3 µs at one target and
// ≈ 5 µs at 32.
//   shootdown_scaling --machine=x86_server --cpus=N [--iterations=200]
#include <cstdio>

#include "tests/models/harness.h"

int sc_main(int argc, char* argv[]) {
  using namespace tlbsim;
  harness::Options o = harness::parse_args(argc, argv);
  const unsigned n = static_cast<unsigned>(std::stoul(o.get("cpus", "2")));
  const unsigned iters = static_cast<unsigned>(std::stoul(o.get("iterations", "200")));
  // The preset's machine (x86_server: 2 sockets x 32 CPUs, in order) with threads on
  // CPUs 0..N-1 only: targets stay on the initiator's socket up to N = 32.
  std::vector<unsigned> cpus;
  for (unsigned i = 0; i < n; ++i) cpus.push_back(i);
  harness::Harness h(o, {cpus});
  h.sys().define_barrier("start", n);
  static bool done = false;
  static uint64_t flush_cycles = 0, munmap_cycles = 0;
  h.program(0, [iters](TaskThread& c) {
    const VirtAddr va = c.mmap(64 * kPageSize);
    for (unsigned p = 0; p < 64; ++p) c.touch(va + p * kPageSize, Access::kWrite);
    c.barrier("start");
    const VirtAddr page = va + 32 * kPageSize;
    CoreStats& s = c.core().stats();
    auto flush_now = [&] {
      return s.ipi_send_cycles.value() + s.local_flush_cycles.value() + s.ipi_wait_cycles.value() +
             s.dsb_wait_cycles.value();
    };
    for (unsigned i = 0; i < iters; ++i) {
      const uint64_t f0 = flush_now();
      c.sync();
      const uint64_t t0 = c.now();
      c.munmap(page, kPageSize);
      c.sync();
      munmap_cycles += c.now() - t0;
      flush_cycles += flush_now() - f0;
      // Re-map: a fresh anonymous page at the same address (MAP_FIXED), faulted in.
      c.kernel_call([&](mm::ExecContext& ctx) {
        mm::MmapArgs a;
        a.addr = page.value();
        a.len = kPageSize;
        a.fixed = true;
        c.system().kernel().sys_mmap(ctx, c.process_mm(), a);
      });
      c.touch(page, Access::kWrite);
      c.advance(2000);
    }
    done = true;
  });
  for (unsigned i = 1; i < n; ++i)
    h.program(i, [](TaskThread& c) {
      const VirtAddr va = c.mmap(16 * kPageSize);
      for (unsigned p = 0; p < 16; ++p) c.touch(va + p * kPageSize, Access::kWrite);
      c.barrier("start");
      while (!done)
        for (unsigned p = 0; p < 16; ++p) c.touch(va + p * kPageSize + 64, Access::kRead);
    });
  h.run();
  const double ghz = h.machine().freq_ghz();
  const double per_flush = static_cast<double>(flush_cycles) / iters;
  const double per_munmap = static_cast<double>(munmap_cycles) / iters;
  std::printf(
      "{\"machine\": \"%s\", \"cpus\": %u, \"targets\": %u, \"flush_cycles\": %.0f, "
      "\"flush_us\": %.3f, \"munmap_cycles\": %.0f, \"munmap_us\": %.3f, \"violations\": %llu}\n",
      o.machine.c_str(), n, n - 1, per_flush, per_flush / ghz / 1000, per_munmap,
      per_munmap / ghz / 1000, static_cast<unsigned long long>(h.violations()));
  return 0;
}
