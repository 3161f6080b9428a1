// A task (mm::Task) as the CPU model runs it: one SystemC thread per task, which
// executes the task's code — a workload thread's ops (models/task/program.h) or a
// harness's C++ — on whichever CPU the scheduler gives it.
//
// Time is loosely timed, as on the CPUs before: the task keeps a local cycle count
// ahead of SystemC time and turns it into a wait() at synchronisation points — the
// quantum, every kernel entry, interactions with other CPUs (a lock whose cache line
// is elsewhere, a flush, a wake-up) and every scheduling event. SystemC time counts
// cycles: 1 cycle = 1 ns of sc_time.
//
// Scheduling: a task runs until it blocks (futex barrier, wait4, nanosleep, a
// sleeping lock), exits, changes its affinity, or is preempted at a preemption point
// (user mode, or cond_resched() in the kernel with no spinlock held) once its time
// slice is used up and another task waits on its CPU. The task that leaves a CPU
// runs context_switch() for the one that follows; a task that a wake-up puts on an
// idle CPU runs the switch from the idle task itself, after the wake-up latency.
//
// mm::ExecHooks: kernel code on this task reports its work, memory, progress and
// lock operations here; locks are waited for by spinning (CPU stays busy; interrupts
// taken meanwhile overlap the wait) or sleeping (the CPU runs something else).
#pragma once

#include <systemc>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/stats.h"
#include "mm/exec_context.h"
#include "mm/sched.h"
#include "models/cpu/core.h"
#include "workloads/op.h"

namespace tlbsim {

class System;
class CacheHierarchy;

/// Per-task counters (system.task[pid]).
struct TaskStats : StatGroup {
  TaskStats(StatGroup* parent, const std::string& name) : StatGroup(parent, name) {}
  Scalar cpu_cycles{this, "cpu_cycles", "cycles", "Cycles it ran on a CPU (user, kernel, spinning)."};
  Scalar sleep_cycles{this, "sleep_cycles", "cycles", "Cycles asleep (futex, wait4, nanosleep, sleeping locks)."};
  Scalar runnable_cycles{this, "runnable_cycles", "cycles", "Cycles runnable but waiting for its CPU (run-queue delay, wake-up latency)."};
  Scalar voluntary_switches{this, "voluntary_switches", "count", "Times it slept (nvcsw)."};
  Scalar involuntary_switches{this, "involuntary_switches", "count", "Times it was preempted (nivcsw)."};
  Scalar migrations{this, "migrations", "count", "Times it changed CPU."};
  Scalar lock_wait_cycles{this, "lock_wait_cycles", "cycles", "Cycles waiting for kernel locks (spinning or asleep)."};
  Scalar exit_cycles{this, "exit_cycles", "cycles", "Time at which it exited."};
  Gauge last_cpu{this, "last_cpu", "cpu", "The CPU it ran on last."};
};

class TaskThread final : public mm::ExecHooks {
 public:
  /// Stack of a task's SystemC thread (a coroutine: nothing grows it, an overflow
  /// corrupts the heap). Kernel paths nest deeply (fault → reclaim → rmap walk,
  /// fork → dup_mmap); 1 MiB each is reserved, and touched only as deep as used.
  static constexpr size_t kStackBytes = size_t{1} << 20;
  TaskThread(System& sys, mm::Task& task, unsigned process, StatGroup* stats_parent);
  ~TaskThread() override;
  TaskThread(const TaskThread&) = delete;
  TaskThread& operator=(const TaskThread&) = delete;

  /// The task behind kernel code running on `ctx` (every ExecContext with hooks in
  /// the models is a task's).
  static TaskThread& of(mm::ExecContext& ctx) { return *static_cast<TaskThread*>(ctx.hooks); }

  mm::Task& task() { return m_task; }
  unsigned pid() const { return m_task.pid; }
  /// The workload process it belongs to (System's numbering).
  unsigned process() const { return m_process; }
  System& system() { return m_sys; }
  /// The CPU it runs on (the last one while it does not run).
  Core& core() { return *m_core; }
  unsigned cpu_id() const { return m_ctx.cpu; }
  mm::ExecContext& ctx() { return m_ctx; }
  mm::Mm& process_mm();
  TaskStats& stats() { return m_stats; }

  /// What it runs: a workload thread's ops, or C++ (harnesses).
  void set_ops(const std::vector<workload::Op>* ops) { m_ops = ops; }
  void set_program(std::function<void(TaskThread&)> p) { m_program = std::move(p); }
  /// Creates its SystemC thread; it waits for the scheduler to give it a CPU.
  void spawn();
  bool exited() const { return m_exited; }

  // --- time ---------------------------------------------------------------------------
  uint64_t now() const { return sc_now_cycles() + m_local; }
  void advance(uint64_t cycles) { m_local += cycles; }
  /// Catches SystemC time up with local time (never switches tasks).
  void sync();
  void sync_if_due() {
    if (m_local >= m_quantum) sync();
  }
  /// Converts kernel primitive counts since the last charge into cycles.
  void charge_kernel();
  /// The CPU's stolen cycles (handlers, snoops) join this task's time.
  void take_stolen() { m_local += m_core->take_stolen(); }
  /// After a spin wait (acks, DSB, a spinlock, a spinning barrier): interrupts taken
  /// meanwhile overlapped the wait; resume when the last of them returned.
  void absorb_irqs();
  /// local_irq_disable() / local_irq_enable() on the current CPU (synchronises).
  void irq_disable();
  void irq_enable();
  uint64_t quantum() const { return m_quantum; }
  /// Cycles left of the current time slice.
  uint64_t slice_left() const {
    const uint64_t ran = now() - m_slice_start;
    return ran < m_slice ? m_slice - ran : 0;
  }

  // --- scheduling (from the task's own code) -----------------------------------------
  /// A preemption point: switch away when the slice is used up and another task
  /// waits here. No effect with a spinlock held or interrupts off.
  void maybe_preempt();
  /// Sleeps until wake() (the caller registered itself where the waker finds it).
  void block();
  /// nanosleep(): sleeps `cycles`.
  void sleep_for(uint64_t cycles);
  /// sched_setaffinity() to one CPU (−1: all CPUs); moves now if it must.
  void migrate(int cpu);
  /// try_to_wake_up(other) at this task's time, `delay` cycles from now.
  void wake(TaskThread& other, uint64_t delay = 0);
  /// The scheduler made this task current on `cpu` from `at`; with `switch_from`
  /// (the CPU's idle task) it runs the context switch itself when it starts.
  void grant_cpu(Core& cpu, uint64_t at, mm::Task* switch_from);

  // --- mm::ExecHooks --------------------------------------------------------------------
  void mem_lines(mm::ExecContext& ctx, mm::MemRefKind kind, uint64_t first, uint64_t nr,
                 bool write) override;
  void progress(mm::ExecContext& ctx) override;
  void sync_with_cpus(mm::ExecContext& ctx) override;
  void lock_acquire(mm::ExecContext& ctx, mm::KernelLock& lock, mm::LockMode mode) override;
  bool lock_try(mm::ExecContext& ctx, mm::KernelLock& lock, mm::LockMode mode) override;
  void lock_release(mm::ExecContext& ctx, mm::KernelLock& lock, mm::LockMode mode) override;
  void lock_downgrade(mm::ExecContext& ctx, mm::KernelLock& lock) override;

  // --- kernel entry, as the permission checker sees it ------------------------------
  /// The kernel call it is in (nullptr in user mode).
  const char* in_kernel() const { return m_in_kernel; }
  /// The last kernel call it returned from (nullptr before the first).
  const char* last_kernel_call() const { return m_last_call; }
  /// Whether its CPU runs a kernel thread with its mm loaded (go_lazy): no user
  /// accesses happen there, stale entries are legitimate until switch_mm.
  bool lazy() const { return m_lazy; }
  /// The JSON pointer of the workload op it runs ("" for harness programs).
  const std::string& current_op() const { return m_op ? *m_op : kNoOp; }
  /// Marks a kernel call (system call, fault, exit) for its lifetime.
  class KernelEntry {
   public:
    KernelEntry(TaskThread& t, const char* what);
    ~KernelEntry();
    KernelEntry(const KernelEntry&) = delete;
    KernelEntry& operator=(const KernelEntry&) = delete;

   private:
    TaskThread& m_t;
    const char* m_prev;
  };

  // --- harness helpers (call from a program) -----------------------------------------
  /// Runs kernel code on this task: synchronise, run `fn`, charge its primitive ops.
  void kernel_call(const std::function<void(mm::ExecContext&)>& fn,
                   const char* what = "harness kernel call");
  /// mmap(len) of anonymous read/write memory (populated if asked); returns the address.
  VirtAddr mmap(uint64_t len, bool populate = false);
  void munmap(VirtAddr addr, uint64_t len);
  /// A user access: page faults enter the kernel; a segmentation fault throws.
  void touch(VirtAddr va, Access kind);
  /// A user access that never enters the kernel: true when it translated.
  bool probe(VirtAddr va, Access kind);
  /// Barrier shared with the other programs (System::define_barrier); spins in user mode.
  void barrier(const std::string& name);
  /// The CPU runs a kernel thread now (enter_lazy_tlb), keeping the user mm loaded.
  void go_lazy();
  /// The CPU returns to this task's user code (switch_mm).
  void resume_user();

  /// This task's share of the counters of the CPUs it ran on (region statistics).
  CoreSnapshot counters() const;

 private:
  friend class Program;
  friend class LockModel;
  void main();
  /// Waits until granted a CPU, starts there (switching from idle if told).
  void wait_for_cpu();
  /// Leaves the CPU in state `st` (runnable, sleeping, dead). False when the
  /// scheduler picked this task again (nothing else to run: it keeps the CPU).
  bool switch_out(mm::TaskState st, bool preempted);
  void on_cpu(Core& c, uint64_t at);
  void off_cpu(uint64_t at);
  /// The thread's end: do_exit() and the last switch.
  void exit_task();

  System& m_sys;
  mm::Task& m_task;
  unsigned m_process;
  Core* m_core;
  mm::ExecContext m_ctx;
  const std::vector<workload::Op>* m_ops = nullptr;
  std::function<void(TaskThread&)> m_program;
  std::array<uint64_t, static_cast<size_t>(mm::KOp::kCount)> m_charged{};
  const std::array<uint64_t, static_cast<size_t>(mm::KOp::kCount)>& m_costs;
  uint64_t m_local = 0;
  uint64_t m_quantum;
  uint64_t m_slice;
  uint64_t m_slice_start = 0;
  CacheHierarchy* m_mem;
  uint64_t m_l1_cycles;
  uint64_t m_inv_mlp_q16;  // 65536 / machine.cache.mlp
  uint64_t m_vmemmap;      // struct page array base in the hierarchy's address space
  // the CPU hand-over
  sc_core::sc_event m_run_event;
  bool m_granted = false;
  Core* m_grant_core = nullptr;
  uint64_t m_grant_at = 0;
  mm::Task* m_grant_from = nullptr;
  uint64_t m_off_at = 0;     // when it last left a CPU
  uint64_t m_woken_at = 0;   // when it was last woken (sleep ends)
  bool m_sleeping = false;   // left its CPU asleep (not runnable)
  bool m_started = false;
  bool m_exited = false;
  bool m_lazy = false;
  const char* m_in_kernel = nullptr;
  const char* m_last_call = nullptr;
  const std::string* m_op = nullptr;
  static inline const std::string kNoOp;
  // counters
  CoreSnapshot m_acc;        // share of earlier stints on CPUs
  CoreSnapshot m_switch_in;  // the CPU's counters when this stint began
  TaskStats m_stats;
};

}  // namespace tlbsim
