// sc_spawn() (dynamic processes: one SystemC thread per task, forks included).
#define SC_INCLUDE_DYNAMIC_PROCESSES

#include "models/task/task_thread.h"

#include "base/asan_stack.h"
#include "base/error.h"
#include "base/trace_writer.h"
#include "mm/kernel.h"
#include "models/system.h"
#include "models/task/lock_model.h"
#include "models/task/program.h"

namespace tlbsim {

TaskThread::TaskThread(System& sys, mm::Task& task, unsigned process, StatGroup* stats_parent)
    : m_sys(sys),
      m_task(task),
      m_process(process),
      m_core(&sys.core(task.cpu)),
      m_ctx(task.cpu),
      m_costs(sys.kernel_costs()),
      m_quantum(sys.quantum_cycles()),
      m_slice(sys.machine().sched.slice_cycles()),
      m_mem(&sys.memory()),
      m_l1_cycles(sys.memory().l1_cycles()),
      m_inv_mlp_q16(static_cast<uint64_t>(65536.0 / sys.machine().cache.mlp() + 0.5)),
      m_vmemmap(vmemmap_base(sys.machine().memory().value)),
      m_stats(stats_parent, "task[" + std::to_string(task.pid) + "]") {
  m_ctx.hooks = this;
  task.model = this;
}

TaskThread::~TaskThread() = default;

mm::Mm& TaskThread::process_mm() { return m_sys.process_mm(m_process); }

void TaskThread::spawn() {
  sc_core::sc_spawn_options opts;
  opts.set_stack_size(kStackBytes);
  sc_core::sc_spawn([this] { main(); }, ("task" + std::to_string(pid())).c_str(), &opts);
}

void TaskThread::main() {
  // An exception must not unwind through the SystemC kernel: hand it to the System,
  // which stops the simulation and rethrows it from run().
  const void* const top = __builtin_frame_address(0);
  const asan::CoroutineStackRoots roots(top, kStackBytes);
  try {
    wait_for_cpu();
    m_started = true;
    if (m_program) {
      m_program(*this);
    } else if (m_ops) {
      Program(*this).run(*m_ops);
    }
    exit_task();
  } catch (const sc_core::sc_unwind_exception&) {
    throw;  // SystemC kills or resets the thread: not an error of ours
  } catch (...) {
    asan::unpoison_coroutine_stack_below_caller(top, kStackBytes);  // base/asan_stack.h
    m_sys.fail(std::current_exception());
  }
}

// --- time -----------------------------------------------------------------------------

void TaskThread::sync() {
  if (m_local) {
    ++m_core->stats().syncs;
    const uint64_t l = m_local;
    m_local = 0;
    sc_core::wait(cycles_to_sc(l));
  }
}

void TaskThread::charge_kernel() {
  uint64_t c = 0;
  auto& kops = m_core->kernel_ops();
  for (size_t i = 0; i < m_ctx.ops.size(); ++i) {
    const uint64_t d = m_ctx.ops[i] - m_charged[i];
    if (!d) continue;
    c += d * m_costs[i];
    kops[i] += d;
    m_charged[i] = m_ctx.ops[i];
  }
  m_core->stats().kernel_cycles += c;
  m_local += c;
}

void TaskThread::absorb_irqs() {
  m_core->take_stolen();
  const uint64_t t = sc_now_cycles();
  m_local = 0;
  if (m_core->irq_busy_until() > t) sc_core::wait(cycles_to_sc(m_core->irq_busy_until() - t));
  m_core->take_stolen();
}

void TaskThread::irq_disable() {
  take_stolen();
  charge_kernel();
  sync();
  // An interrupt in progress returns first.
  if (m_core->irq_busy_until() > sc_now_cycles()) absorb_irqs();
  m_core->irqs_off();
}

void TaskThread::irq_enable() {
  charge_kernel();
  sync();
  m_core->irqs_on();
}

// --- the CPU hand-over ----------------------------------------------------------------

void TaskThread::grant_cpu(Core& cpu, uint64_t at, mm::Task* switch_from) {
  m_granted = true;
  m_grant_core = &cpu;
  m_grant_at = at;
  m_grant_from = switch_from;
  const uint64_t t = sc_now_cycles();
  m_run_event.notify(cycles_to_sc(at > t ? at - t : 0));
}

void TaskThread::on_cpu(Core& c, uint64_t at) {
  m_core = &c;
  m_ctx.cpu = c.id();
  c.begin_task(this, at);
  m_switch_in = c.snapshot();
  m_slice_start = at;
  m_stats.last_cpu.set(c.id());
  if (TraceWriter* tw = m_sys.trace()) [[unlikely]]
    tw->instant(c.id(), "sched", "run " + m_task.name + " (pid " + std::to_string(m_task.pid) + ")", at);
}

void TaskThread::off_cpu(uint64_t at) {
  m_acc += m_core->snapshot() - m_switch_in;
  m_stats.cpu_cycles += at - m_slice_start;
  m_core->end_task(at);
  m_off_at = at;
}

void TaskThread::wait_for_cpu() {
  while (!m_granted) sc_core::wait(m_run_event);
  m_granted = false;
  Core& c = *m_grant_core;
  uint64_t at = std::max({m_grant_at, sc_now_cycles(), c.irq_busy_until()});
  if (at > sc_now_cycles()) sc_core::wait(cycles_to_sc(at - sc_now_cycles()));
  at = std::max(sc_now_cycles(), c.irq_busy_until());  // an interrupt may have come meanwhile
  if (at > sc_now_cycles()) sc_core::wait(cycles_to_sc(at - sc_now_cycles()));
  at = sc_now_cycles();
  if (m_started) {
    if (m_sleeping) {
      const uint64_t woke = std::max(m_woken_at, m_off_at);
      m_stats.sleep_cycles += woke - m_off_at;
      m_stats.runnable_cycles += at - woke;
    } else {
      m_stats.runnable_cycles += at - m_off_at;
    }
  }
  m_sleeping = false;
  m_local = 0;
  on_cpu(c, at);
  m_stats.migrations.set(m_task.nr_migrations);
  if (mm::Task* from = m_grant_from) {
    // The CPU was idle: this task runs the switch from the idle task, interrupts off.
    m_grant_from = nullptr;
    m_core->irqs_off();
    m_sys.sched().context_switch(m_ctx, *from, m_task);
    charge_kernel();
    sync();
    m_core->irqs_on();
  }
}

bool TaskThread::switch_out(mm::TaskState st, bool preempted) {
  take_stolen();
  charge_kernel();
  mm::Scheduler& s = m_sys.sched();
  const unsigned cpu = m_ctx.cpu;
  m_task.state = st;
  mm::Task& next = s.schedule(cpu, preempted);
  if (&next == &m_task) return false;  // nothing else to run: keep the CPU
  if (st == mm::TaskState::kSleeping) {
    m_sleeping = true;
    m_woken_at = 0;
    m_stats.voluntary_switches.set(m_task.nvcsw);
  }
  m_stats.involuntary_switches.set(m_task.nivcsw);
  // context_switch() on this CPU with interrupts off, charged to the leaving task.
  sync();
  if (m_core->irq_busy_until() > sc_now_cycles()) absorb_irqs();
  m_core->irqs_off();
  s.context_switch(m_ctx, m_task, next);
  charge_kernel();
  take_stolen();
  sync();
  m_core->irqs_on();
  const uint64_t t = sc_now_cycles();
  Core& c = *m_core;
  off_cpu(t);
  if (!next.is_idle) static_cast<TaskThread*>(next.model)->grant_cpu(c, t, nullptr);
  // Queued on another CPU (affinity): that CPU may be idle.
  if (st == mm::TaskState::kRunnable && m_task.cpu != cpu) m_sys.kick_cpu(m_task.cpu, t);
  return true;
}

void TaskThread::maybe_preempt() {
  if (m_ctx.spin_depth || m_core->irqs_disabled()) return;
  const unsigned cpu = m_ctx.cpu;
  if (!m_sys.sched().nr_queued(cpu) || now() - m_slice_start < m_slice) return;
  if (switch_out(mm::TaskState::kRunnable, true)) wait_for_cpu();
}

void TaskThread::block() {
  if (m_ctx.spin_depth) throw std::logic_error("sleeping with a spinlock held");
  if (!switch_out(mm::TaskState::kSleeping, false)) {
    // schedule() picked it again: only a runnable task can be picked; a sleeper
    // never is (it is off every queue), so this cannot happen.
    throw std::logic_error("block(): the sleeping task was picked to run");
  }
  wait_for_cpu();
}

void TaskThread::sleep_for(uint64_t cycles) {
  const uint64_t until = now() + cycles;
  if (!switch_out(mm::TaskState::kSleeping, false)) throw std::logic_error("sleep_for: picked again");
  if (until > sc_now_cycles()) sc_core::wait(cycles_to_sc(until - sc_now_cycles()));
  wake(*this);  // the hrtimer fired
  wait_for_cpu();
}

void TaskThread::migrate(int cpu) {
  m_sys.sched().set_cpus_allowed(m_task, cpu);
  if (cpu < 0 || static_cast<unsigned>(cpu) == m_ctx.cpu) return;
  // The stopper moves it: leave this CPU, be queued on the allowed one.
  if (switch_out(mm::TaskState::kRunnable, false)) wait_for_cpu();
}

void TaskThread::wake(TaskThread& other, uint64_t delay) {
  const int cpu = m_sys.sched().try_to_wake_up(other.task());
  if (cpu < 0) return;
  other.m_woken_at = now() + delay;
  m_sys.kick_cpu(static_cast<unsigned>(cpu), now() + delay);
}

void TaskThread::exit_task() {
  take_stolen();
  charge_kernel();
  sync();
  {
    KernelEntry entry(*this, "exit");
    m_sys.thread_exit(*this);
  }
  charge_kernel();
  sync();
  m_stats.exit_cycles.set(now());
  m_exited = true;
  if (!switch_out(mm::TaskState::kDead, false)) throw std::logic_error("exit: picked again");
  m_sys.process_exited(m_process);
}

CoreSnapshot TaskThread::counters() const {
  CoreSnapshot s = m_acc;
  s += m_core->snapshot() - m_switch_in;
  return s;
}

// --- mm::ExecHooks ------------------------------------------------------------------------

void TaskThread::mem_lines(mm::ExecContext&, mm::MemRefKind kind, uint64_t first, uint64_t nr,
                           bool write) {
  (void)write;
  const unsigned cpu = m_core->id();
  if (kind == mm::MemRefKind::kPageData) {
    // clear_page / copy_page: the page's lines are now cached; their cost is the
    // KOp's (measured on uncached pages).
    m_mem->fill_page(cpu, first);
    return;
  }
  // Kernel code chases pointers (PTE → page → folio), so a miss costs its latency;
  // but the sequential struct-page and page-table runs of zap, fork and the
  // allocator are streamed by the prefetcher ahead of the loop, and the core
  // overlaps those arrivals with its work (machine.cache.mlp).
  const uint64_t pa = kind == mm::MemRefKind::kStructPage ? m_vmemmap + first : first;
  uint64_t dependent = 0, streamed = 0;
  for (uint64_t i = 0; i < nr; ++i) {
    const CacheHierarchy::Result r = m_mem->access(cpu, pa + i * 64, MemSource::kKernel);
    (r.level == MemLevel::kStream ? streamed : dependent) += r.cycles - m_l1_cycles;
  }
  const uint64_t c = dependent + ((streamed * m_inv_mlp_q16) >> 16);
  m_core->stats().kernel_mem_cycles += c;
  m_core->stats().kernel_cycles += c;
  m_local += c;
}

void TaskThread::progress(mm::ExecContext&) {
  take_stolen();
  charge_kernel();
  sync_if_due();
  if (!m_ctx.spin_depth) maybe_preempt();  // cond_resched()
}

void TaskThread::sync_with_cpus(mm::ExecContext&) {
  take_stolen();
  charge_kernel();
  sync();
}

void TaskThread::lock_acquire(mm::ExecContext&, mm::KernelLock& lock, mm::LockMode mode) {
  m_sys.locks().acquire(*this, lock, mode);
}

bool TaskThread::lock_try(mm::ExecContext&, mm::KernelLock& lock, mm::LockMode mode) {
  return m_sys.locks().try_acquire(*this, lock, mode);
}

void TaskThread::lock_release(mm::ExecContext&, mm::KernelLock& lock, mm::LockMode mode) {
  m_sys.locks().release(*this, lock, mode);
}

void TaskThread::lock_downgrade(mm::ExecContext&, mm::KernelLock& lock) {
  m_sys.locks().downgrade(*this, lock);
}

// --- kernel entry -------------------------------------------------------------------------

TaskThread::KernelEntry::KernelEntry(TaskThread& t, const char* what)
    : m_t(t), m_prev(t.m_in_kernel) {
  t.m_in_kernel = what;
  if (CoherenceChecker* c = t.m_sys.checker()) c->kernel_boundary();
}

TaskThread::KernelEntry::~KernelEntry() {
  if (!m_prev) m_t.m_last_call = m_t.m_in_kernel;
  m_t.m_in_kernel = m_prev;
  if (CoherenceChecker* c = m_t.m_sys.checker()) c->kernel_boundary();
}

// --- harness helpers ----------------------------------------------------------------------

void TaskThread::kernel_call(const std::function<void(mm::ExecContext&)>& fn, const char* what) {
  KernelEntry entry(*this, what);
  take_stolen();
  sync();
  fn(m_ctx);
  charge_kernel();
}

VirtAddr TaskThread::mmap(uint64_t len, bool populate) {
  uint64_t r = 0;
  KernelEntry entry(*this, "mmap");
  kernel_call([&](mm::ExecContext& ctx) {
    ++m_core->stats().syscalls;
    mm::MmapArgs a;
    a.len = len;
    a.populate = populate;
    r = m_sys.kernel().sys_mmap(ctx, process_mm(), a);
  });
  if (const int e = mm::Kernel::mmap_errno(r))
    throw InputError("", "harness mmap failed with errno " + std::to_string(e));
  return VirtAddr(r);
}

void TaskThread::munmap(VirtAddr addr, uint64_t len) {
  int r = 0;
  KernelEntry entry(*this, "munmap");
  kernel_call([&](mm::ExecContext& ctx) {
    ++m_core->stats().syscalls;
    r = m_sys.kernel().sys_munmap(ctx, process_mm(), addr, len);
  });
  if (r < 0) throw InputError("", "harness munmap failed with errno " + std::to_string(-r));
}

void TaskThread::touch(VirtAddr va, Access kind) { Program(*this).touch(va, kind, ""); }

bool TaskThread::probe(VirtAddr va, Access kind) {
  Core& c = *m_core;
  ++c.stats().probes;
  take_stolen();
  const XlatResult r = c.is_arm64() ? c.arm64_mmu().translate(va, kind, c.asid(), c.root())
                                    : c.mmu().translate(va, kind, c.asid(), c.root());
  m_local += m_sys.machine().access_cycles() + r.cycles;
  if (r.fault) ++c.stats().probe_faults;
  sync_if_due();
  return !r.fault;
}

void TaskThread::barrier(const std::string& name) {
  // Harness barrier: the task spins in user mode, its CPU keeps running its mm.
  take_stolen();
  sync();
  const uint64_t t = sc_now_cycles();
  m_sys.barrier_wait(*this, name, true);
  m_core->stats().barrier_wait_cycles += sc_now_cycles() - t;
}

void TaskThread::go_lazy() {
  kernel_call([&](mm::ExecContext& ctx) { m_sys.arch().enter_lazy_tlb(ctx); });
  m_lazy = true;
}

void TaskThread::resume_user() {
  kernel_call([&](mm::ExecContext& ctx) { m_sys.arch().switch_mm(ctx, process_mm()); });
  m_lazy = false;
}

}  // namespace tlbsim
