#include "models/task/program.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "base/error.h"
#include "base/trace_writer.h"
#include "mm/kernel.h"
#include "models/system.h"
#include "models/task/task_thread.h"
#include "base/json_text.h"
#include "workloads/trace_file.h"
#include "workloads/zipf_sampler.h"

namespace tlbsim {

using workload::Op;
using workload::OpKind;

namespace {
template <class Mmu>
Mmu& mmu_of(Core& c);
template <>
x86::X86CoreMmu& mmu_of<x86::X86CoreMmu>(Core& c) {
  return c.mmu();
}
template <>
arm64::Arm64CoreMmu& mmu_of<arm64::Arm64CoreMmu>(Core& c) {
  return c.arm64_mmu();
}

// splitmix64: deterministic, cheap, good enough for access addresses.
inline uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Access access_of(workload::AccessKind k) {
  return k == workload::AccessKind::kWrite  ? Access::kWrite
         : k == workload::AccessKind::kExec ? Access::kExec
                                            : Access::kRead;
}
}  // namespace

Program::Program(TaskThread& t) : m_t(t), m_sys(t.system()) {}

void Program::run(const std::vector<Op>& ops) { exec_ops(ops); }

void Program::exec_ops(const std::vector<Op>& ops) {
  for (const Op& op : ops) {
    if (m_exiting) return;
    m_t.m_op = &op.pointer;  // for the permission checker's reports
    exec_op(op);
  }
}

void Program::trace_span(const char* cat, const std::string& name, uint64_t start,
                         const std::string& args) {
  if (TraceWriter* t = m_sys.trace()) t->complete(m_t.cpu_id(), cat, name, start, m_t.now() - start, args);
}

void Program::enter_region(const std::string& name) {
  RegionStats& r = m_sys.region(name);
  m_t.take_stolen();
  m_t.charge_kernel();
  m_t.sync();
  ++r.entries;
  if (r.entries == 1) r.free_pages_at_entry.set(static_cast<int64_t>(m_sys.phys().nr_free_pages()));
  if (r.active++ == 0) {
    const mm::VmStat& vm = m_sys.kernel().vmstat_const();
    r.split_pmd_at_entry = vm.thp_split_pmd;
    r.deferred_at_entry = vm.thp_deferred_split_page;
    r.split_deferred_at_entry = vm.split_deferred_total();
  }
  r.first_entry = std::min(r.first_entry, m_t.now());
  m_region_at.push_back(m_t.counters());
  m_region_now.push_back(m_t.now());
}

void Program::leave_region(const std::string& name) {
  m_t.take_stolen();
  m_t.charge_kernel();
  m_t.sync();
  RegionStats& r = m_sys.region(name);
  if (--r.active == 0) {
    const mm::VmStat& vm = m_sys.kernel().vmstat_const();
    r.thp_split_pmd += vm.thp_split_pmd - r.split_pmd_at_entry;
    r.thp_deferred_split_page += vm.thp_deferred_split_page - r.deferred_at_entry;
    r.split_deferred += vm.split_deferred_total() - r.split_deferred_at_entry;
  }
  const CoreSnapshot d = m_t.counters() - m_region_at.back();
  const uint64_t entered = m_region_now.back();
  m_region_at.pop_back();
  m_region_now.pop_back();
  const uint64_t now = m_t.now();
  r.cpu_cycles += now - entered;
  r.kernel_cycles += d.kernel_cycles;
  r.accesses += d.accesses;
  r.faults += d.faults;
  r.syscalls += d.syscalls;
  r.dtlb_misses += d.dtlb_misses;
  r.stlb_misses += d.stlb_misses;
  r.walks += d.walks;
  r.flush_requests += d.flush_requests;
  r.ipis_sent += d.ipis_sent;
  r.inval_by_va += d.invlpg;
  r.inval_full += d.full_flushes;
  r.ipi_wait_cycles += d.ipi_wait_cycles;
  r.tlbis += d.tlbis;
  r.dsb_wait_cycles += d.dsb_wait_cycles;
  r.kernel_mem_cycles += d.kernel_mem_cycles;
  r.xlat_cycles += d.xlat_cycles;
  r.data_cycles += d.data_cycles;
  r.local_flush_cycles += d.local_flush_cycles;
  r.lock_wait_cycles += d.lock_wait_cycles;
  for (size_t i = 0; i < d.ops.size(); ++i) *r.kernel_ops[i] += d.ops[i];
  trace_span("region", name, entered);
  r.last_exit = std::max(r.last_exit, now);
  r.free_pages_at_exit.set(static_cast<int64_t>(m_sys.phys().nr_free_pages()));
  r.vmas_at_exit.set(static_cast<int64_t>(m_t.process_mm().vmas().size()));
  r.cycles.set(r.last_exit - r.first_entry);
}

template <class Call>
Program::Window Program::syscall_on_window(const Op& op, Call&& call) {
  // A system call on a window of a named mapping: synchronise, enter the kernel,
  // charge its work, record it on the timeline; errors are the workload's (exit 2).
  auto [start, len] = m_sys.mapping(m_t.process(), op.mapping, op.pointer);
  const uint64_t length = op.length ? op.length : len - op.offset;
  TaskThread::KernelEntry entry(m_t, workload::op_name(op.kind));
  m_t.take_stolen();
  m_t.sync();
  const uint64_t t0 = m_t.now();
  ++m_t.core().stats().syscalls;
  const int64_t r = call(start + op.offset, length);
  m_t.charge_kernel();
  const std::string name = workload::op_name(op.kind);
  trace_span("syscall", name + " " + op.mapping, t0,
             "{\"pages\":" + std::to_string(length >> kPageShift) + "}");
  if (r < 0) throw InputError(op.pointer, name + " failed with errno " + std::to_string(-r));
  return Window{len, length};
}

void Program::exec_op(const Op& op) {
  mm::Kernel& k = m_sys.kernel();
  mm::Mm& mm = m_t.process_mm();
  mm::ExecContext& ctx = m_t.ctx();
  switch (op.kind) {
    case OpKind::kMmap: {
      TaskThread::KernelEntry entry(m_t, "mmap");
      m_t.take_stolen();
      m_t.sync();
      const uint64_t t0 = m_t.now();
      ++m_t.core().stats().syscalls;
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
      const uint64_t r = k.sys_mmap(ctx, mm, a);
      m_t.charge_kernel();
      if (const int e = mm::Kernel::mmap_errno(r))
        throw InputError(op.pointer, "mmap of " + std::to_string(op.size) +
                                         " bytes failed with errno " + std::to_string(e));
      m_sys.set_mapping(m_t.process(), op.mapping, VirtAddr(r), op.size);
      trace_span("syscall", "mmap " + op.mapping, t0);
      break;
    }
    case OpKind::kMunmap: {
      const Window w = syscall_on_window(op, [&](VirtAddr start, uint64_t length) -> int64_t {
        return k.sys_munmap(ctx, mm, start, length);
      });
      if (op.offset == 0 && w.length >= w.mapping_len) m_sys.drop_mapping(m_t.process(), op.mapping);
      break;
    }
    case OpKind::kMremap: {
      // mremap(2) of the whole mapping; it keeps its name at the new address and size.
      auto [start, len] = m_sys.mapping(m_t.process(), op.mapping, op.pointer);
      TaskThread::KernelEntry entry(m_t, "mremap");
      m_t.take_stolen();
      m_t.sync();
      const uint64_t t0 = m_t.now();
      ++m_t.core().stats().syscalls;
      const unsigned flags = (op.maymove ? mm::kMremapMaymove : 0u) | (op.fixed ? mm::kMremapFixed : 0u);
      const uint64_t r = k.sys_mremap(ctx, mm, start, len, op.size, flags, VirtAddr(op.addr));
      m_t.charge_kernel();
      trace_span("syscall", "mremap " + op.mapping, t0,
                 "{\"pages\":" + std::to_string(len >> kPageShift) + "}");
      if (const int e = mm::Kernel::mmap_errno(r))
        throw InputError(op.pointer, "mremap of mapping " + op.mapping + " to " +
                                         std::to_string(op.size) + " bytes failed with errno " +
                                         std::to_string(e));
      m_sys.set_mapping(m_t.process(), op.mapping, VirtAddr(r), op.size);
      break;
    }
    case OpKind::kTouch:
      if (m_t.core().is_arm64()) {
        op_touch_with<arm64::Arm64CoreMmu>(op);
      } else {
        op_touch_with<x86::X86CoreMmu>(op);
      }
      break;
    case OpKind::kMprotect:
      syscall_on_window(op, [&](VirtAddr start, uint64_t length) -> int64_t {
        return k.sys_mprotect(ctx, mm, start, length, op.prot_read, op.prot_write, op.prot_exec);
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
        return k.sys_madvise(ctx, mm, start, length, adv);
      });
      break;
    }
    case OpKind::kMovePages:
      syscall_on_window(op, [&](VirtAddr start, uint64_t length) -> int64_t {
        return k.move_pages(ctx, mm, start, length);
      });
      break;
    case OpKind::kPin: {
      // io_uring_register(IORING_REGISTER_BUFFERS) / ibv_reg_mr: pin_user_pages(
      // FOLL_WRITE | FOLL_LONGTERM) of the window, held until unpin or exit.
      System::Pin pin;
      pin.mapping = op.mapping;
      pin.offset = op.offset;
      const Window w = syscall_on_window(op, [&](VirtAddr start, uint64_t length) -> int64_t {
        ctx.count(mm::KOp::kSyscallEntry);
        return k.pin_user_pages(ctx, mm, start, length, pin.pages);
      });
      pin.length = w.length;
      m_sys.add_pin(m_t.process(), std::move(pin));
      break;
    }
    case OpKind::kUnpin: {
      // IORING_UNREGISTER_BUFFERS / ibv_dereg_mr: unpin_user_pages() of every pin
      // inside the window (no length: to the end of the mapping). The mapping may be
      // gone by now: munmap leaves pinned pages allocated until they are unpinned.
      TaskThread::KernelEntry entry(m_t, "unpin");
      m_t.take_stolen();
      m_t.sync();
      const uint64_t t0 = m_t.now();
      ++m_t.core().stats().syscalls;
      ctx.count(mm::KOp::kSyscallEntry);
      const uint64_t length = op.length ? op.length : ~uint64_t{0} - op.offset;
      auto pins = m_sys.take_pins(m_t.process(), op.mapping, op.offset, length);
      for (const auto& pin : pins) k.unpin_user_pages(ctx, pin.pages);
      m_t.charge_kernel();
      trace_span("syscall", "unpin " + op.mapping, t0);
      if (pins.empty())
        throw InputError(op.pointer, "unpin failed with errno " + std::to_string(ENXIO) +
                                         " (ENXIO): no pin of mapping " + op.mapping +
                                         " lies inside the window");
      break;
    }
    case OpKind::kReclaim: {
      // Reclaim on this task (kswapd-like) until `pages` are freed and/or
      // `target_free` bytes of memory are free.
      TaskThread::KernelEntry entry(m_t, "reclaim");
      m_t.take_stolen();
      m_t.sync();
      const uint64_t t0 = m_t.now();
      uint64_t want = op.pages;
      const uint64_t target = op.target_free >> kPageShift;
      const uint64_t free_now = k.phys().nr_free_pages();
      if (target > free_now) want = std::max(want, target - free_now);
      k.reclaim(ctx, want);
      m_t.charge_kernel();
      trace_span("kernel", "reclaim", t0);
      break;
    }
    case OpKind::kFork: {
      m_t.take_stolen();
      m_t.sync();
      const uint64_t t0 = m_t.now();
      ++m_t.core().stats().syscalls;
      mm::Mm* child = nullptr;
      {
        TaskThread::KernelEntry entry(m_t, "fork");
        child = k.sys_fork(ctx, mm);
        m_t.charge_kernel();
      }
      if (!child)
        throw InputError(op.pointer, "fork failed with errno " + std::to_string(ENOMEM) +
                                         " (ENOMEM): out of memory duplicating the address space");
      // The child exists (and can run) once copy_process() returned on this CPU.
      m_t.sync();
      trace_span("syscall", "fork", t0);
      m_children.push_back(m_sys.spawn(*child, m_t, op.cpu, op.body));
      break;
    }
    case OpKind::kExit:
      m_exiting = true;
      break;
    case OpKind::kWait: {
      // wait4() until every child this thread forked has exited: the task sleeps.
      m_t.take_stolen();
      ++m_t.core().stats().syscalls;
      ctx.count(mm::KOp::kSyscallEntry);
      m_t.charge_kernel();
      m_t.sync();
      const uint64_t t = m_t.now();
      for (unsigned c : m_children) m_sys.wait_exit(m_t, c);
      m_children.clear();
      trace_span("syscall", "wait", t);
      break;
    }
    case OpKind::kBarrier:
      barrier_op(op);
      break;
    case OpKind::kPost: {
      // sem_post(): an atomic increment in user mode; futex_wake() only when a
      // task sleeps on the semaphore (glibc new_sem_post).
      m_t.take_stolen();
      m_t.sync();
      const uint64_t t = m_t.now();
      if (m_sys.sem_post(m_t, op.name, op.count)) {
        ++m_t.core().stats().syscalls;
        ctx.count(mm::KOp::kSyscallEntry);
        m_t.charge_kernel();
      }
      trace_span("barrier", "post " + op.name, t);
      break;
    }
    case OpKind::kAwait:
      // sem_wait(): futex_wait() when it must sleep; a spin stays in user mode.
      wait_op(op, [&] { m_sys.sem_await(m_t, op.name, op.spin); });
      break;
    case OpKind::kReplay:
      if (m_t.core().is_arm64()) {
        op_replay_with<arm64::Arm64CoreMmu>(op);
      } else {
        op_replay_with<x86::X86CoreMmu>(op);
      }
      break;
    case OpKind::kSleep:
      if (op.spin) {
        // A busy loop in user mode: the CPU keeps running this task.
        m_t.advance(op.cycles);
        m_t.sync_if_due();
        m_t.maybe_preempt();
      } else {
        // nanosleep(): the task sleeps; its CPU runs another task or idles.
        m_t.take_stolen();
        ++m_t.core().stats().syscalls;
        ctx.count(mm::KOp::kSyscallEntry);
        m_t.charge_kernel();
        m_t.sleep_for(op.cycles);
      }
      break;
    case OpKind::kMigrate: {
      // sched_setaffinity(0, one CPU): the task moves there (the stopper migrates it).
      m_t.take_stolen();
      ++m_t.core().stats().syscalls;
      ctx.count(mm::KOp::kSyscallEntry);
      m_t.charge_kernel();
      m_t.sync();
      const uint64_t t0 = m_t.now();
      m_t.migrate(op.cpu);
      trace_span("syscall", "migrate to cpu" + std::to_string(op.cpu), t0);
      break;
    }
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

uint64_t Program::user_access_cycles(const XlatResult& r, uint64_t& data) {
  CacheHierarchy& mem = m_t.system().memory();
  const CacheHierarchy::Result d = mem.access(m_t.cpu_id(), r.pa, MemSource::kUser);
  const uint64_t beyond = d.cycles - m_t.m_l1_cycles;
  data += beyond;
  return m_sys.machine().access_cycles() + (((r.cycles + beyond) * m_t.m_inv_mlp_q16) >> 16);
}

template <CoreMmu Mmu>
void Program::op_touch_with(const Op& op) {
  auto [start, len] = m_sys.mapping(m_t.process(), op.mapping, op.pointer);
  if (op.offset >= len) throw InputError(op.pointer, "offset beyond the end of the mapping");
  const uint64_t window = op.length ? std::min(op.length, len - op.offset) : len - op.offset;
  const VirtAddr base = start + op.offset;
  const uint64_t pages = (window + kPageSize - 1) >> kPageShift;
  const Access kind = access_of(op.access);
  uint64_t rng = op.seed * 0x9E3779B97F4A7C15ull + m_t.pid() + m_sys.seed();
  const uint64_t stride = op.pattern == workload::Pattern::kSequential ? kPageSize : op.stride;
  const uint64_t count = op.count ? op.count : std::max<uint64_t>(1, window / stride);
  const bool linear =
      op.pattern == workload::Pattern::kSequential || op.pattern == workload::Pattern::kStrided;
  if (linear && stride < window) {
    // The hot loop of most workloads, kept in locals (systemc-performance.md: member
    // reloads and flag polls cost more than the SystemC kernel). Asynchronous work —
    // IPI handlers, other CPUs' TLBIs, context changes, preemption and migration —
    // can only happen while this task waits, so it is picked up after each sync;
    // faults take the general path.
    Core* core = &m_t.core();
    Mmu* mmu = &mmu_of<Mmu>(*core);
    CacheHierarchy& mem = m_sys.memory();
    const uint64_t access_cycles = m_sys.machine().access_cycles();
    const uint64_t l1 = m_t.m_l1_cycles;
    const uint64_t inv_mlp = m_t.m_inv_mlp_q16;
    uint64_t local = m_t.m_local + core->take_stolen();
    uint64_t accesses = 0, xlat = 0, data = 0;
    const uint64_t think = op.think_cycles;
    const uint64_t quantum = m_t.m_quantum;
    uint16_t asid = core->asid();
    Pfn root = core->root();
    unsigned cpu = core->id();
    auto flush_counts = [&] {
      core->stats().xlat_cycles += xlat;
      core->stats().data_cycles += data;
      core->stats().accesses += accesses;
      accesses = xlat = data = 0;
    };
    for (uint64_t rep = 0; rep < op.repeat; ++rep) {
      uint64_t off = 0;
      for (uint64_t i = 0; i < count; ++i) {
        const VirtAddr va = base + off;
        off += stride;
        if (off >= window) off -= window;
        const XlatResult r = mmu->translate(va, kind, asid, root);
        xlat += r.cycles;
        ++accesses;
        if (r.fault) [[unlikely]] {
          m_t.m_local = local + r.cycles + think;  // the walk that found no translation
          flush_counts();
          retry_after_fault<Mmu>(va, kind, op.pointer);
        } else {
          const CacheHierarchy::Result d = mem.access(cpu, r.pa, MemSource::kUser);
          const uint64_t beyond = d.cycles - l1;
          data += beyond;
          local += think + access_cycles + (((r.cycles + beyond) * inv_mlp) >> 16);
          if (local < quantum) [[likely]] continue;
          m_t.m_local = local;
          flush_counts();
        }
        m_t.sync_if_due();
        m_t.maybe_preempt();
        core = &m_t.core();
        mmu = &mmu_of<Mmu>(*core);
        cpu = core->id();
        local = m_t.m_local + core->take_stolen();
        asid = core->asid();
        root = core->root();
      }
    }
    m_t.m_local = local;
    flush_counts();
    return;
  }
  std::unique_ptr<workload::ZipfSampler> zipf;
  if (op.pattern == workload::Pattern::kZipf)
    zipf = std::make_unique<workload::ZipfSampler>(pages, op.zipf_theta);
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
        case workload::Pattern::kZipf:
          // Rank 1 is the hottest page: the window's first.
          off = ((*zipf)([&] { return static_cast<double>(splitmix(rng) >> 11) * 0x1.0p-53; }) - 1)
                << kPageShift;
          break;
      }
      access<Mmu>(base + off, kind, op.pointer);
      m_t.advance(op.think_cycles);
    }
  }
}

template <CoreMmu Mmu>
void Program::op_replay_with(const Op& op) {
  // Each trace run: `count` accesses of one kind to one page of a named mapping.
  // Mappings are looked up at their first run: one the op lists but no longer
  // reaches (another thread unmapped it meanwhile) is not an error.
  std::vector<std::pair<VirtAddr, uint64_t>> maps(op.mappings.size(), {VirtAddr(0), 0});
  std::vector<bool> known(op.mappings.size(), false);
  workload::TraceReader in(op.trace_file, op.trace_start);
  workload::TraceEntry e;
  for (uint64_t n = 0; n < op.trace_runs; ++n) {
    if (!in.next(e) || e.mapping >= maps.size())
      throw InputError(op.pointer, "trace file " + quote_excerpt(op.trace_file) +
                                       " changed after the workload was read");
    if (!known[e.mapping]) [[unlikely]] {
      maps[e.mapping] = m_sys.mapping(m_t.process(), op.mappings[e.mapping], op.pointer);
      known[e.mapping] = true;
    }
    const auto& [base, len] = maps[e.mapping];
    if ((e.page << kPageShift) >= len)
      throw InputError(op.pointer, "trace page " + std::to_string(e.page) + " lies beyond mapping \"" +
                                       op.mappings[e.mapping] + "\"");
    const VirtAddr va = base + (e.page << kPageShift);
    const Access kind = access_of(e.kind);
    for (uint32_t i = 0; i < e.count; ++i) access<Mmu>(va, kind, op.pointer);
  }
}

void Program::barrier_op(const Op& op) {
  wait_op(op, [&] { m_sys.barrier_wait(m_t, op.name, op.spin); });
}

template <class Wait>
void Program::wait_op(const Op& op, Wait wait) {
  m_t.take_stolen();
  if (!op.spin) {
    // futex_wait: a system call that sleeps (the CPU runs another task or idles).
    ++m_t.core().stats().syscalls;
    m_t.ctx().count(mm::KOp::kSyscallEntry);
    m_t.charge_kernel();
  }
  m_t.sync();
  const uint64_t t = m_t.now();
  wait();
  if (op.spin) m_t.core().stats().barrier_wait_cycles += m_t.now() - t;
  trace_span("barrier", (op.spin ? "spin at " : "sleep at ") + op.name, t);
}

void Program::touch(VirtAddr va, Access kind, const std::string& pointer) {
  if (m_t.core().is_arm64()) {
    access<arm64::Arm64CoreMmu>(va, kind, pointer);
  } else {
    access<x86::X86CoreMmu>(va, kind, pointer);
  }
}

template <CoreMmu Mmu>
void Program::access(VirtAddr va, Access kind, const std::string& pointer) {
  Core& core = m_t.core();
  ++core.stats().accesses;
  m_t.take_stolen();
  const XlatResult r = mmu_of<Mmu>(core).translate(va, kind, core.asid(), core.root());
  core.stats().xlat_cycles += r.cycles;
  if (r.fault) {
    m_t.advance(r.cycles);
    retry_after_fault<Mmu>(va, kind, pointer);
  } else {
    uint64_t data = 0;
    m_t.advance(user_access_cycles(r, data));
    core.stats().data_cycles += data;
  }
  m_t.sync_if_due();
  m_t.maybe_preempt();
}

template <CoreMmu Mmu>
void Program::retry_after_fault(VirtAddr va, Access kind, const std::string& pointer) {
  // Page fault: enter the kernel (synchronise first), then retry the access.
  for (;;) {
    m_t.take_stolen();
    m_t.sync();
    ++m_t.core().stats().faults;
    uint32_t flags = mm::kFaultUser;
    if (kind == Access::kWrite) flags |= mm::kFaultWrite;
    if (kind == Access::kExec) flags |= mm::kFaultExec;
    const uint64_t t0 = m_t.now();
    mm::FaultResult fr;
    {
      TaskThread::KernelEntry entry(m_t, kind == Access::kWrite ? "write fault" : "fault");
      fr = m_sys.kernel().handle_mm_fault(m_t.ctx(), m_t.process_mm(), va, flags);
      m_t.charge_kernel();
    }
    if (m_sys.trace()) [[unlikely]]
      trace_span("fault", kind == Access::kWrite ? "write fault" : "fault", t0);
    if (fr == mm::FaultResult::kSegv) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(va.value()));
      throw InputError(pointer, "segmentation fault: task " + m_t.task().name + " on CPU " +
                                    std::to_string(m_t.cpu_id()) + " accessed " + buf +
                                    " outside any mapping with the needed permission");
    }
    if (fr == mm::FaultResult::kOom)
      throw InputError(pointer, "out of memory: the machine's memory is too small for the workload");
    Core& core = m_t.core();  // the kernel may have slept: another CPU, perhaps
    const XlatResult r = mmu_of<Mmu>(core).translate(va, kind, core.asid(), core.root());
    core.stats().xlat_cycles += r.cycles;
    if (!r.fault) {
      uint64_t data = 0;
      m_t.advance(user_access_cycles(r, data));
      core.stats().data_cycles += data;
      return;
    }
    m_t.advance(r.cycles);
  }
}

}  // namespace tlbsim
