#include "models/cpu/core.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "mm/kernel.h"
#include "base/trace_writer.h"
#include "models/system.h"

namespace tlbsim {

using workload::Op;
using workload::OpKind;

Core::Core(sc_core::sc_module_name name, unsigned id, System& sys, StatGroup* stats_parent)
    : sc_core::sc_module(name),
      m_id(id),
      m_sys(sys),
      m_ctx(id),
      m_costs(sys.machine().costs.table()),
      m_quantum(sys.machine().quantum_cycles()),
      m_access_cycles(sys.machine().access_cycles()),
      m_mem(&sys.memory()),
      m_l1_cycles(sys.memory().l1_cycles()),
      m_inv_mlp_q16(static_cast<uint64_t>(65536.0 / sys.machine().cache.mlp() + 0.5)),
      m_vmemmap(vmemmap_base(sys.machine().memory().value)),
      m_stats(stats_parent, "cpu[" + std::to_string(id) + "]"),
      m_kops_stats(&m_stats, "kernel_ops"),
      m_cache_stats(&m_stats, "cache") {
  m_ctx.hooks = this;
  for (size_t s = 0; s < static_cast<size_t>(MemSource::kCount); ++s) {
    auto g = std::make_unique<StatGroup>(&m_cache_stats, kMemSourceNames[s]);
    for (size_t l = 0; l < static_cast<size_t>(MemLevel::kCount); ++l)
      m_kop_refs.push_back(std::make_unique<CounterRef>(
          g.get(), kMemLevelNames[l], "count", "References served at this level.",
          sys.memory().counter(id, static_cast<MemSource>(s), static_cast<MemLevel>(l))));
    m_cache_groups.push_back(std::move(g));
  }
  for (size_t i = 0; i < m_ctx.ops.size(); ++i)
    m_kop_refs.push_back(std::make_unique<CounterRef>(&m_kops_stats, mm::kKOpNames[i], "count",
                                                      "Primitive kernel operations of this kind.",
                                                      &m_ctx.ops[i]));
  auto wire = [&](auto& mmu) {
    if (CoherenceChecker* c = sys.checker()) {
      mmu.set_frame_generations({c->generations()});
      mmu.set_stale_hook(&CoherenceChecker::on_stale, c);
    }
  };
  handler_end.assign(sys.machine().cpus(), 0);
  if (sys.machine().arch() == "arm64") {
    m_arm64 = std::make_unique<arm64::Arm64CoreMmu>(id, sys.machine(), sys.phys(), sys.memory(), &m_stats);
    wire(*m_arm64);
  } else {
    m_x86 = std::make_unique<x86::X86CoreMmu>(id, sys.machine(), sys.phys(), sys.memory(), &m_stats);
    wire(*m_x86);
  }
  SC_THREAD(run);
  SC_METHOD(ipi_handler);
  sensitive << m_ipi_queue;
  dont_initialize();
}

void Core::sync() {
  if (m_local) {
    ++m_stats.syncs;
    const uint64_t l = m_local;
    m_local = 0;
    sc_core::wait(cycles_to_sc(l));
  }
}

void Core::charge_kernel() {
  uint64_t c = 0;
  for (size_t i = 0; i < m_ctx.ops.size(); ++i) {
    c += (m_ctx.ops[i] - m_charged[i]) * m_costs[i];
    m_charged[i] = m_ctx.ops[i];
  }
  m_stats.kernel_cycles += c;
  m_local += c;
}

void Core::mem_lines(mm::ExecContext&, mm::MemRefKind kind, uint64_t first, uint64_t nr,
                     bool write) {
  (void)write;
  if (kind == mm::MemRefKind::kPageData) {
    // clear_page / copy_page: the page's lines are now cached; their cost is the
    // KOp's (measured on uncached pages).
    m_mem->fill_page(m_id, first);
    return;
  }
  // Kernel code chases pointers (PTE → page → folio), so a miss costs its latency;
  // but the sequential struct-page and page-table runs of zap, fork and the
  // allocator are streamed by the prefetcher ahead of the loop, and the core
  // overlaps those arrivals with its work (machine.cache.mlp).
  const uint64_t pa = kind == mm::MemRefKind::kStructPage ? m_vmemmap + first : first;
  uint64_t dependent = 0, streamed = 0;
  for (uint64_t i = 0; i < nr; ++i) {
    const CacheHierarchy::Result r = m_mem->access(m_id, pa + i * 64, MemSource::kKernel);
    (r.level == MemLevel::kStream ? streamed : dependent) += r.cycles - m_l1_cycles;
  }
  const uint64_t c = dependent + ((streamed * m_inv_mlp_q16) >> 16);
  m_stats.kernel_mem_cycles += c;
  m_stats.kernel_cycles += c;
  m_local += c;
}

void Core::progress(mm::ExecContext&) {
  charge_kernel();
  sync_if_due();
}

void Core::post_ipi(const IpiMessage& m) {
  m_mailbox.push_back(m);
  m_ipi_queue.notify(cycles_to_sc(m.deliver_at - sc_now_cycles()));
}

void Core::ipi_handler() {
  // Handle every message due now, in arrival order.
  const uint64_t t = sc_now_cycles();
  while (!m_mailbox.empty() && m_mailbox.front().deliver_at <= t) {
    IpiMessage m = m_mailbox.front();
    m_mailbox.pop_front();
    ++m_stats.ipis_received;
    const uint64_t cost = m_sys.x86()->handle_flush_ipi(*this, m.info);
    m_stats.handler_cycles += cost;
    m_stolen += cost;
    Core& from = m_sys.core(m.from);
    from.handler_end[m_id] = t + cost;
    if (TraceWriter* tw = m_sys.trace()) {
      tw->complete(m_id, "ipi", "flush IPI from cpu" + std::to_string(m.from), t, cost,
                   m.info.full() ? R"({"flush":"full"})"
                                 : "{\"pages\":" + std::to_string(m.info.nr_steps()) + "}");
      tw->flow(m_sys.next_flow_id(), m.from, m.sent_at, m_id, t, "ipi");
    }
    if (--from.pending_acks == 0) from.ack_event().notify();
  }
}

void Core::run() {
  // An exception must not unwind through the SystemC kernel: hand it to the System,
  // which stops the simulation and rethrows it from run().
  try {
    if (m_program || m_ops) {
      m_busy = true;
      run_thread();
    }
    // An idle CPU may later run a forked child (System::spawn), one after another.
    for (;;) {
      while (!m_busy) sc_core::wait(m_start_event);
      run_thread();
    }
  } catch (const sc_core::sc_unwind_exception&) {
    throw;  // SystemC kills or resets the thread: not an error of ours
  } catch (...) {
    m_sys.fail(std::current_exception());
  }
}

void Core::run_thread() {
  mm::Mm& mm = m_sys.process_mm(m_process);
  m_sys.arch().switch_mm(m_ctx, mm);
  charge_kernel();
  if (m_program) {
    m_program(*this);
  } else {
    exec_ops(*m_ops);
  }
  // The thread returns: the CPU goes idle with the mm loaded lazily.
  m_sys.arch().enter_lazy_tlb(m_ctx);
  m_local += m_stolen;
  m_stolen = 0;
  sync();
  m_sys.thread_exit(*this, m_process);
  charge_kernel();
  sync();
  m_sys.process_exited(m_process);
  m_stats.cycles.set(now());
  m_program = nullptr;
  m_ops = nullptr;
  m_exiting = false;
  m_children.clear();
  m_busy = false;
}

void Core::exec_ops(const std::vector<Op>& ops) {
  for (const Op& op : ops) {
    if (m_exiting) return;
    exec_op(op);
  }
}

void Core::enter_region(const std::string& name) {
  RegionStats& r = m_sys.region(name);
  charge_kernel();
  sync();
  ++r.entries;
  if (r.entries == 1) r.free_pages_at_entry.set(static_cast<int64_t>(m_sys.phys().nr_free_pages()));
  if (r.active++ == 0) {
    const mm::VmStat& vm = m_sys.kernel().vmstat_const();
    r.split_pmd_at_entry = vm.thp_split_pmd;
    r.deferred_at_entry = vm.thp_deferred_split_page;
    r.split_deferred_at_entry = vm.split_deferred_total();
  }
  r.first_entry = std::min(r.first_entry, now());
  m_region_snapshot = snapshot();
}

void Core::leave_region(const std::string& name) {
  charge_kernel();
  sync();
  RegionStats& r = m_sys.region(name);
  if (--r.active == 0) {
    const mm::VmStat& vm = m_sys.kernel().vmstat_const();
    r.thp_split_pmd += vm.thp_split_pmd - r.split_pmd_at_entry;
    r.thp_deferred_split_page += vm.thp_deferred_split_page - r.deferred_at_entry;
    r.split_deferred += vm.split_deferred_total() - r.split_deferred_at_entry;
  }
  const Snapshot s = snapshot();
  const Snapshot& b = m_region_snapshot;
  r.cpu_cycles += s.now - b.now;
  r.kernel_cycles += s.kernel_cycles - b.kernel_cycles;
  r.accesses += s.accesses - b.accesses;
  r.faults += s.faults - b.faults;
  r.syscalls += s.syscalls - b.syscalls;
  r.dtlb_misses += s.dtlb_misses - b.dtlb_misses;
  r.stlb_misses += s.stlb_misses - b.stlb_misses;
  r.walks += s.walks - b.walks;
  r.flush_requests += s.flush_requests - b.flush_requests;
  r.ipis_sent += s.ipis_sent - b.ipis_sent;
  r.invlpg += s.invlpg - b.invlpg;
  r.full_flushes += s.full_flushes - b.full_flushes;
  r.ipi_wait_cycles += s.ipi_wait_cycles - b.ipi_wait_cycles;
  r.tlbis += s.tlbis - b.tlbis;
  r.dsb_wait_cycles += s.dsb_wait_cycles - b.dsb_wait_cycles;
  r.kernel_mem_cycles += s.kernel_mem_cycles - b.kernel_mem_cycles;
  r.xlat_cycles += s.xlat_cycles - b.xlat_cycles;
  r.data_cycles += s.data_cycles - b.data_cycles;
  r.local_flush_cycles += s.local_flush_cycles - b.local_flush_cycles;
  for (size_t i = 0; i < s.ops.size(); ++i) *r.kernel_ops[i] += s.ops[i] - b.ops[i];
  trace_span("region", name, b.now);
  r.last_exit = std::max(r.last_exit, s.now);
  r.free_pages_at_exit.set(static_cast<int64_t>(m_sys.phys().nr_free_pages()));
  r.vmas_at_exit.set(static_cast<int64_t>(m_sys.process_mm(m_process).vmas().size()));
  r.cycles.set(r.last_exit - r.first_entry);
}

Core::Snapshot Core::snapshot() const {
  Snapshot s;
  s.now = now();
  s.kernel_cycles = m_stats.kernel_cycles;
  s.accesses = m_stats.accesses;
  s.faults = m_stats.faults;
  s.syscalls = m_stats.syscalls;
  s.dtlb_misses = l1d().stats.misses;
  s.stlb_misses = l2() ? l2()->stats.misses : 0;
  const CoreMmuCounters& mc = mmu_counters();
  s.walks = mc.walks;
  s.flush_requests = m_stats.flush_requests;
  s.ipis_sent = m_stats.ipis_sent;
  s.invlpg = mc.invlpg_count;
  s.full_flushes = mc.pcid_flushes;
  s.ipi_wait_cycles = m_stats.ipi_wait_cycles;
  s.tlbis = m_stats.tlbi_sent;
  s.dsb_wait_cycles = m_stats.dsb_wait_cycles;
  s.kernel_mem_cycles = m_stats.kernel_mem_cycles;
  s.xlat_cycles = m_stats.xlat_cycles;
  s.data_cycles = m_stats.data_cycles;
  s.local_flush_cycles = m_stats.local_flush_cycles;
  s.ops = m_ctx.ops;
  return s;
}

namespace {
/// Holds an mm's kernel lock for the scope of one kernel entry (System::lock_mm).
class MmLockGuard {
 public:
  MmLockGuard(System& sys, Core& core, const mm::Mm& mm) : m_sys(sys), m_mm(mm) { sys.lock_mm(core, mm); }
  ~MmLockGuard() { m_sys.unlock_mm(m_mm); }
  MmLockGuard(const MmLockGuard&) = delete;
  MmLockGuard& operator=(const MmLockGuard&) = delete;

 private:
  System& m_sys;
  const mm::Mm& m_mm;
};
}  // namespace

template <class Call>
Core::Window Core::syscall_on_window(const Op& op, Call&& call) {
  // A system call on a window of a named mapping: synchronise, enter the kernel with
  // the mm's lock held, charge its work, record it on the timeline; errors are the
  // workload's (exit code 2).
  auto [start, len] = m_sys.mapping(m_process, op.mapping, op.pointer);
  const uint64_t length = op.length ? op.length : len - op.offset;
  sync();
  const uint64_t t0 = now();
  ++m_stats.syscalls;
  int64_t r;
  {
    MmLockGuard lock(m_sys, *this, m_sys.process_mm(m_process));
    r = call(start + op.offset, length);
  }
  charge_kernel();
  const std::string name = workload::op_name(op.kind);
  trace_span("syscall", name + " " + op.mapping, t0,
             "{\"pages\":" + std::to_string(length >> kPageShift) + "}");
  if (r < 0)
    throw InputError(op.pointer, name + " failed with errno " + std::to_string(-r));
  return Window{len, length};
}

void Core::exec_op(const Op& op) {
  mm::Kernel& k = m_sys.kernel();
  mm::Mm& mm = m_sys.process_mm(m_process);
  switch (op.kind) {
    case OpKind::kMmap: {
      sync();
      const uint64_t t0 = now();
      ++m_stats.syscalls;
      mm::MmapArgs a;
      a.len = op.size;
      a.read = op.prot_read;
      a.write = op.prot_write;
      a.exec = op.prot_exec;
      a.populate = op.populate;
      a.align = op.align;
      a.addr = op.addr;
      a.fixed = op.fixed;
      if (op.thp == workload::ThpHint::kHugePage) a.extra_vm_flags |= mm::kVmHugePage;
      if (op.thp == workload::ThpHint::kNoHugePage) a.extra_vm_flags |= mm::kVmNoHugePage;
      const int64_t r = [&] {
        MmLockGuard lock(m_sys, *this, mm);
        return k.sys_mmap(m_ctx, mm, a);
      }();
      charge_kernel();
      if (r < 0)
        throw InputError(op.pointer, "mmap of " + std::to_string(op.size) +
                                         " bytes failed with errno " + std::to_string(-r));
      m_sys.set_mapping(m_process, op.mapping, VirtAddr(static_cast<uint64_t>(r)), op.size);
      trace_span("syscall", "mmap " + op.mapping, t0);
      break;
    }
    case OpKind::kMunmap: {
      const Window w = syscall_on_window(op, [&](VirtAddr start, uint64_t length) -> int64_t {
        return k.sys_munmap(m_ctx, mm, start, length);
      });
      if (op.offset == 0 && w.length >= w.mapping_len) m_sys.drop_mapping(m_process, op.mapping);
      break;
    }
    case OpKind::kTouch:
      op_touch(op);
      break;
    case OpKind::kMprotect:
      syscall_on_window(op, [&](VirtAddr start, uint64_t length) -> int64_t {
        return k.sys_mprotect(m_ctx, mm, start, length, op.prot_read, op.prot_write, op.prot_exec);
      });
      break;
    case OpKind::kMadvise: {
      const mm::Advice adv = op.advice == "dontneed"   ? mm::Advice::kDontneed
                             : op.advice == "free"     ? mm::Advice::kFree
                             : op.advice == "hugepage" ? mm::Advice::kHugepage
                             : op.advice == "pageout"  ? mm::Advice::kPageout
                             : op.advice == "cold"     ? mm::Advice::kCold
                                                       : mm::Advice::kNohugepage;
      syscall_on_window(op, [&](VirtAddr start, uint64_t length) -> int64_t {
        return k.sys_madvise(m_ctx, mm, start, length, adv);
      });
      break;
    }
    case OpKind::kMovePages:
      syscall_on_window(op, [&](VirtAddr start, uint64_t length) -> int64_t {
        return k.move_pages(m_ctx, mm, start, length);
      });
      break;
    case OpKind::kReclaim: {
      // Reclaim on this CPU (kswapd-like) until `pages` are freed and/or `target_free`
      // bytes of memory are free.
      sync();
      const uint64_t t0 = now();
      {
        MmLockGuard lock(m_sys, *this, mm);
        uint64_t want = op.pages;
        const uint64_t target = op.target_free >> kPageShift;
        const uint64_t free_now = k.phys().nr_free_pages();
        if (target > free_now) want = std::max(want, target - free_now);
        k.reclaim(m_ctx, want);
      }
      charge_kernel();
      trace_span("kernel", "reclaim", t0);
      break;
    }
    case OpKind::kFork: {
      sync();
      const uint64_t t0 = now();
      ++m_stats.syscalls;
      mm::Mm* child = [&] {
        MmLockGuard lock(m_sys, *this, mm);
        return k.sys_fork(m_ctx, mm);
      }();
      charge_kernel();
      if (!child)
        throw InputError(op.pointer, "fork failed with errno " + std::to_string(ENOMEM) +
                                         " (ENOMEM): out of memory duplicating the address space");
      // The child exists (and can run) once copy_process() returned on this CPU.
      sync();
      trace_span("syscall", "fork", t0);
      m_children.push_back(
          m_sys.spawn(*child, m_process, static_cast<unsigned>(op.cpu), op.body, op.pointer));
      break;
    }
    case OpKind::kExit:
      m_exiting = true;
      break;
    case OpKind::kWait: {
      // wait4() until every child this thread forked has exited: the CPU sleeps.
      m_local += m_stolen;
      m_stolen = 0;
      ++m_stats.syscalls;
      m_ctx.count(mm::KOp::kSyscallEntry);
      m_sys.arch().enter_lazy_tlb(m_ctx);
      charge_kernel();
      sync();
      const uint64_t t = sc_now_cycles();
      for (unsigned c : m_children) m_sys.wait_exit(c);
      m_children.clear();
      m_stats.barrier_wait_cycles += sc_now_cycles() - t;
      trace_span("syscall", "wait", t);
      m_sys.arch().switch_mm(m_ctx, m_sys.process_mm(m_process));
      charge_kernel();
      break;
    }
    case OpKind::kBarrier:
      barrier_op(op);
      break;
    case OpKind::kReplay:
      if (m_x86) {
        op_replay_with(*m_x86, op);
      } else {
        op_replay_with(*m_arm64, op);
      }
      break;
    case OpKind::kSleep:
      m_local += op.cycles;
      break;
    case OpKind::kRegion:
      enter_region(op.name);
      exec_ops(op.body);
      leave_region(op.name);
      break;
    default:
      throw InputError(op.pointer, std::string("not supported yet: op \"") +
                                       workload::op_name(op.kind) + "\"");
  }
}

namespace {
// splitmix64: deterministic, cheap, good enough for access addresses.
inline uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

void Core::op_touch(const Op& op) {
  // One dispatch per op; the loop below is instantiated per MMU type.
  if (m_x86) {
    op_touch_with(*m_x86, op);
  } else {
    op_touch_with(*m_arm64, op);
  }
}

template <CoreMmu Mmu>
void Core::op_touch_with(Mmu& mmu, const Op& op) {
  auto [start, len] = m_sys.mapping(m_process, op.mapping, op.pointer);
  if (op.offset >= len) throw InputError(op.pointer, "offset beyond the end of the mapping");
  const uint64_t window = op.length ? std::min(op.length, len - op.offset) : len - op.offset;
  const VirtAddr base = start + op.offset;
  const uint64_t pages = (window + kPageSize - 1) >> kPageShift;
  const Access kind = op.access == workload::AccessKind::kWrite  ? Access::kWrite
                      : op.access == workload::AccessKind::kExec ? Access::kExec
                                                                 : Access::kRead;
  uint64_t rng = op.seed * 0x9E3779B97F4A7C15ull + m_id + m_sys.seed();
  // Zipf over pages: inverse CDF by bisection over a precomputed table (once per op).
  std::vector<double> zipf_cdf;
  if (op.pattern == workload::Pattern::kZipf) {
    zipf_cdf.resize(pages);
    double sum = 0;
    for (uint64_t i = 0; i < pages; ++i) sum += 1.0 / std::pow(static_cast<double>(i + 1), op.zipf_theta);
    double acc = 0;
    for (uint64_t i = 0; i < pages; ++i) {
      acc += 1.0 / std::pow(static_cast<double>(i + 1), op.zipf_theta) / sum;
      zipf_cdf[i] = acc;
    }
  }
  const uint64_t stride = op.pattern == workload::Pattern::kSequential ? kPageSize : op.stride;
  const uint64_t count = op.count ? op.count : std::max<uint64_t>(1, window / stride);
  const bool linear =
      op.pattern == workload::Pattern::kSequential || op.pattern == workload::Pattern::kStrided;
  if (linear && stride < window) {
    // The hot loop of most workloads, kept in locals (systemc-performance.md: member
    // reloads and flag polls cost more than the SystemC kernel). Asynchronous work —
    // IPI handlers, other cores' TLBIs stealing cycles, context changes — can only
    // happen while this thread waits, so it is picked up after each sync; faults
    // take the general path.
    uint64_t local = m_local + m_stolen;
    m_stolen = 0;
    uint64_t accesses = 0, xlat = 0, data = 0;
    const uint64_t think = op.think_cycles;
    const uint64_t quantum = m_quantum;
    uint16_t asid = m_asid;
    Pfn root = m_root;
    for (uint64_t rep = 0; rep < op.repeat; ++rep) {
      uint64_t off = 0;
      for (uint64_t i = 0; i < count; ++i) {
        const VirtAddr va = base + off;
        off += stride;
        if (off >= window) off -= window;
        const XlatResult r = mmu.translate(va, kind, asid, root);
        xlat += r.cycles;
        ++accesses;
        if (r.fault) [[unlikely]] {
          m_local = local + r.cycles + think;  // the walk that found no translation
          retry_after_fault(mmu, va, kind, op.pointer);
        } else if ((local += think + user_access_cycles(r, data)) < quantum) [[likely]] {
          continue;
        } else {
          m_local = local;
        }
        sync_if_due();
        local = m_local + m_stolen;
        m_stolen = 0;
        asid = m_asid;
        root = m_root;
      }
    }
    m_local = local;
    m_stats.xlat_cycles += xlat;
    m_stats.data_cycles += data;
    m_stats.accesses += accesses;
    return;
  }
  for (uint64_t rep = 0; rep < op.repeat; ++rep) {
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t off = 0;
      switch (op.pattern) {
        case workload::Pattern::kSequential:
        case workload::Pattern::kStrided:
          off = (i * stride) % window;
          break;
        case workload::Pattern::kRandom:
          off = (splitmix(rng) % pages) << kPageShift;
          break;
        case workload::Pattern::kZipf: {
          const double u = static_cast<double>(splitmix(rng) >> 11) * 0x1.0p-53;
          off = static_cast<uint64_t>(std::lower_bound(zipf_cdf.begin(), zipf_cdf.end(), u) -
                                      zipf_cdf.begin());
          if (off >= pages) off = pages - 1;
          off <<= kPageShift;
          break;
        }
      }
      access(mmu, base + off, kind, op.pointer);
      m_local += op.think_cycles;
    }
  }
}

template <CoreMmu Mmu>
void Core::op_replay_with(Mmu& mmu, const Op& op) {
  // Each trace run: `count` accesses of one kind to one page of a named mapping.
  std::vector<std::pair<VirtAddr, uint64_t>> maps;
  for (const auto& name : op.mappings) maps.push_back(m_sys.mapping(m_process, name, op.pointer));
  for (const workload::TraceEntry& e : *op.trace) {
    const auto& [base, len] = maps[e.mapping];
    if ((e.page << kPageShift) >= len)
      throw InputError(op.pointer, "trace page " + std::to_string(e.page) + " lies beyond mapping \"" +
                                       op.mappings[e.mapping] + "\"");
    const VirtAddr va = base + (e.page << kPageShift);
    const Access kind = e.kind == workload::AccessKind::kWrite  ? Access::kWrite
                        : e.kind == workload::AccessKind::kExec ? Access::kExec
                                                                : Access::kRead;
    for (uint32_t i = 0; i < e.count; ++i) access(mmu, va, kind, op.pointer);
  }
}

void Core::barrier_op(const Op& op) {
  m_local += m_stolen;
  m_stolen = 0;
  if (!op.spin) {
    // futex_wait: enter the kernel and schedule the idle task (lazy TLB).
    ++m_stats.syscalls;
    m_ctx.count(mm::KOp::kSyscallEntry);
    m_sys.arch().enter_lazy_tlb(m_ctx);
    charge_kernel();
  }
  sync();
  const uint64_t t = sc_now_cycles();
  m_sys.barrier_wait(*this, op.name);
  m_stats.barrier_wait_cycles += sc_now_cycles() - t;
  trace_span("barrier", (op.spin ? "spin at " : "sleep at ") + op.name, t);
  if (!op.spin) {
    // Woken: switch back from the idle task to this thread's mm.
    m_sys.arch().switch_mm(m_ctx, m_sys.process_mm(m_process));
    charge_kernel();
  }
}

void Core::trace_span(const char* cat, const std::string& name, uint64_t start,
                      const std::string& args) {
  if (TraceWriter* t = m_sys.trace()) t->complete(m_id, cat, name, start, now() - start, args);
}

template <CoreMmu Mmu>
void Core::access(Mmu& mmu, VirtAddr va, Access kind, const std::string& pointer) {
  ++m_stats.accesses;
  if (m_stolen) {
    m_local += m_stolen;
    m_stolen = 0;
  }
  const XlatResult r = mmu.translate(va, kind, m_asid, m_root);
  m_stats.xlat_cycles += r.cycles;
  if (r.fault) {
    m_local += r.cycles;
    retry_after_fault(mmu, va, kind, pointer);
  } else {
    uint64_t data = 0;
    m_local += user_access_cycles(r, data);
    m_stats.data_cycles += data;
  }
  sync_if_due();
}

template <CoreMmu Mmu>
void Core::retry_after_fault(Mmu& mmu, VirtAddr va, Access kind, const std::string& pointer) {
  // Page fault: enter the kernel (synchronise first), then retry the access.
  for (;;) {
    sync();
    ++m_stats.faults;
    uint32_t flags = mm::kFaultUser;
    if (kind == Access::kWrite) flags |= mm::kFaultWrite;
    if (kind == Access::kExec) flags |= mm::kFaultExec;
    const uint64_t t0 = now();
    const mm::FaultResult fr = [&] {
      mm::Mm& mm = m_sys.process_mm(m_process);
      MmLockGuard lock(m_sys, *this, mm);
      return m_sys.kernel().handle_mm_fault(m_ctx, mm, va, flags);
    }();
    charge_kernel();
    if (m_sys.trace()) [[unlikely]]
      trace_span("fault", kind == Access::kWrite ? "write fault" : "fault", t0);
    if (fr == mm::FaultResult::kSegv) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(va.value()));
      throw InputError(pointer, "segmentation fault: thread on CPU " + std::to_string(m_id) +
                                    " accessed " + buf +
                                    " outside any mapping with the needed permission");
    }
    if (fr == mm::FaultResult::kOom)
      throw InputError(pointer, "out of memory: the machine's memory is too small for the workload");
    const XlatResult r = mmu.translate(va, kind, m_asid, m_root);
    m_stats.xlat_cycles += r.cycles;
    if (!r.fault) {
      uint64_t data = 0;
      m_local += user_access_cycles(r, data);
      m_stats.data_cycles += data;
      return;
    }
    m_local += r.cycles;
  }
}

// --- harness helpers ----------------------------------------------------------------------

mm::Mm& Core::process_mm() { return m_sys.process_mm(m_process); }

void Core::kernel_call(const std::function<void(mm::ExecContext&)>& fn) {
  m_local += m_stolen;
  m_stolen = 0;
  sync();
  fn(m_ctx);
  charge_kernel();
}

VirtAddr Core::mmap(uint64_t len, bool populate) {
  int64_t r = 0;
  kernel_call([&](mm::ExecContext& ctx) {
    ++m_stats.syscalls;
    mm::MmapArgs a;
    a.len = len;
    a.populate = populate;
    r = m_sys.kernel().sys_mmap(ctx, process_mm(), a);
  });
  if (r < 0) throw InputError("", "harness mmap failed with errno " + std::to_string(-r));
  return VirtAddr(static_cast<uint64_t>(r));
}

void Core::munmap(VirtAddr addr, uint64_t len) {
  int r = 0;
  kernel_call([&](mm::ExecContext& ctx) {
    ++m_stats.syscalls;
    r = m_sys.kernel().sys_munmap(ctx, process_mm(), addr, len);
  });
  if (r < 0) throw InputError("", "harness munmap failed with errno " + std::to_string(-r));
}

void Core::touch(VirtAddr va, Access kind) {
  if (m_x86) {
    access(*m_x86, va, kind, "");
  } else {
    access(*m_arm64, va, kind, "");
  }
}

bool Core::probe(VirtAddr va, Access kind) {
  ++m_stats.probes;
  m_local += m_stolen;
  m_stolen = 0;
  const XlatResult r =
      m_x86 ? m_x86->translate(va, kind, m_asid, m_root) : m_arm64->translate(va, kind, m_asid, m_root);
  m_local += m_access_cycles + r.cycles;
  if (r.fault) ++m_stats.probe_faults;
  if (m_local >= m_quantum) sync();
  return !r.fault;
}

void Core::barrier(const std::string& name) {
  // Harness barrier: the CPU keeps running its mm while it waits.
  m_local += m_stolen;
  m_stolen = 0;
  sync();
  const uint64_t t = sc_now_cycles();
  m_sys.barrier_wait(*this, name);
  m_stats.barrier_wait_cycles += sc_now_cycles() - t;
}

void Core::go_lazy() {
  kernel_call([&](mm::ExecContext& ctx) { m_sys.arch().enter_lazy_tlb(ctx); });
}

void Core::resume_user() {
  kernel_call([&](mm::ExecContext& ctx) { m_sys.arch().switch_mm(ctx, process_mm()); });
}

}  // namespace tlbsim
