// The scheduler: tasks (struct task_struct) placed on CPUs with per-CPU run queues,
// in the shape of kernel/sched/core.c and fair.c but without their arithmetic (no
// vruntime, lag or load weights): each run queue serves its tasks round robin, a
// running task is preempted when its time slice is used up and another task waits
// on its CPU, a waking task goes to an idle CPU when it may, and a CPU about to go
// idle pulls a waiting task from the busiest queue (newidle balancing).
//
// What the kernel does at a switch is kept exactly: context_switch() calls
// enter_lazy_tlb() when the next task has no mm (the idle task borrows the previous
// active_mm, which stays loaded) and switch_mm_irqs_off() otherwise, so lazy TLB,
// PCID and ASID reuse and mm_cpumask arise from the schedule.
//
// Time is not this file's business (mm/ never measures it): the CPU model decides
// when a slice is used up, runs each task's code, and makes the calls below at the
// moments they happen.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "base/stats.h"
#include "mm/exec_context.h"

namespace tlbsim::mm {

class ArchMmu;
class Mm;

enum class TaskState : uint8_t {
  kRunnable,  // TASK_RUNNING, waiting on a run queue
  kRunning,   // TASK_RUNNING, current on its CPU
  kSleeping,  // TASK_INTERRUPTIBLE / TASK_UNINTERRUPTIBLE: off every run queue
  kDead,      // EXIT_DEAD
};

/// struct task_struct, the parts the simulator uses.
struct Task {
  unsigned pid = 0;           // unique task number (Linux: the thread's pid)
  unsigned tgid = 0;          // the process (thread group) it belongs to
  std::string name;
  Mm* mm = nullptr;           // nullptr: a kernel thread (the idle tasks)
  Mm* active_mm = nullptr;    // the mm whose page tables are loaded while it runs
  TaskState state = TaskState::kSleeping;
  int allowed_cpu = -1;       // cpus_mask: one CPU, or −1 for every CPU
  unsigned cpu = 0;           // task_cpu(): where it runs, is queued or last ran
  bool is_idle = false;       // the per-CPU idle task
  uint64_t nvcsw = 0;         // voluntary switches (it slept)
  uint64_t nivcsw = 0;        // involuntary switches (preempted)
  uint64_t nr_migrations = 0; // times it changed CPU
  void* model = nullptr;      // the CPU model's thread of this task (opaque here)
};

/// Scheduler statistics (system.sched).
struct SchedStats : StatGroup {
  explicit SchedStats(StatGroup* parent) : StatGroup(parent, "sched") {}
  Scalar context_switches{this, "context_switches", "count", "context_switch() calls (idle task included)."};
  Scalar switch_mm{this, "switch_mm", "count", "Switches that loaded another user mm (switch_mm_irqs_off with prev != next)."};
  Scalar lazy_entries{this, "lazy_entries", "count", "Switches to a kernel thread that kept the previous mm loaded (enter_lazy_tlb)."};
  Scalar lazy_exits{this, "lazy_exits", "count", "Switches from a kernel thread back to the mm it had kept loaded."};
  Scalar wakeups{this, "wakeups", "count", "try_to_wake_up() calls that woke a sleeping task."};
  Scalar wakeups_idle_cpu{this, "wakeups_idle_cpu", "count", "Wake-ups (new tasks included) placed on an idle CPU."};
  Scalar preemptions{this, "preemptions", "count", "Tasks preempted at the end of their time slice."};
  Scalar migrations{this, "migrations", "count", "Tasks that changed CPU (placement, balancing, affinity)."};
  Scalar newidle_pulls{this, "newidle_pulls", "count", "Tasks pulled by a CPU about to go idle (sched_balance_newidle)."};
};

struct SchedConfig {
  unsigned nr_cpus = 1;
  /// The last-level-cache domain of each CPU (select_idle_sibling searches it).
  std::vector<unsigned> llc_of;
  /// Newidle balancing: a CPU about to go idle pulls a waiting task from another.
  bool newidle_balance = true;
};

class Scheduler {
 public:
  Scheduler(const SchedConfig& cfg, ArchMmu& arch, StatGroup* stats_parent);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  unsigned nr_cpus() const { return static_cast<unsigned>(m_rq.size()); }

  /// copy_process(): a new task of process `tgid` using `mm` (nullptr: a kernel
  /// thread), allowed on `allowed_cpu` only (−1: anywhere). It sleeps until
  /// wake_up_new_task(). References stay valid for the scheduler's lifetime.
  Task& create_task(unsigned tgid, Mm* mm, int allowed_cpu, std::string name);
  Task& task(unsigned pid) { return *m_tasks[pid]; }
  unsigned nr_tasks() const { return static_cast<unsigned>(m_tasks.size()); }
  /// The idle task of `cpu` (pid nr_cpus + cpu is never reused; idle tasks are
  /// not in task()).
  Task& idle_task(unsigned cpu) { return *m_rq[cpu].idle; }

  /// cpu_curr(cpu): the task current on `cpu` (its idle task when nothing runs).
  Task& curr(unsigned cpu) const { return *m_rq[cpu].curr; }
  bool cpu_idle(unsigned cpu) const {
    return m_rq[cpu].curr->is_idle && m_rq[cpu].queue.empty();
  }
  /// Tasks waiting on `cpu`'s run queue (not counting the current one).
  unsigned nr_queued(unsigned cpu) const { return static_cast<unsigned>(m_rq[cpu].queue.size()); }

  /// wake_up_new_task(): place a new task (select_task_rq with SD_BALANCE_FORK:
  /// its allowed CPU, else the idlest CPU) and queue it. Returns its CPU.
  unsigned wake_up_new_task(Task& t);
  /// try_to_wake_up(): a sleeping task becomes runnable on the CPU
  /// select_task_rq() picks (its allowed CPU; else its previous CPU when idle; else
  /// an idle CPU sharing that CPU's LLC; else its previous CPU). Returns the CPU, or
  /// −1 when it was not sleeping.
  int try_to_wake_up(Task& t);
  /// set_cpus_allowed_ptr() to one CPU (−1: all). A queued task moves to an allowed
  /// run queue now; a running one must leave its CPU through schedule().
  void set_cpus_allowed(Task& t, int cpu);

  /// __schedule() on `cpu`: the current task stops (its state was set by the
  /// caller: kRunnable when preempted or migrating, kSleeping, kDead); a runnable
  /// one goes to the tail of the queue its affinity allows. Picks the next task
  /// (queue head, else one pulled by newidle balancing, else the idle task), makes
  /// it current and returns it. `preempted` counts an involuntary switch.
  Task& schedule(unsigned cpu, bool preempted = false);
  /// The CPU is idle and its queue is not empty: pick_next_task() from the idle
  /// task (the model calls this when a wake-up lands on an idle CPU).
  Task& schedule_idle(unsigned cpu);
  /// context_switch(rq, prev, next): the mm part, on ctx.cpu. A kernel thread
  /// (next->mm == NULL) borrows prev's active_mm (enter_lazy_tlb); a user task gets
  /// switch_mm_irqs_off(prev->active_mm, next->mm). Counts KOp::kContextSwitch.
  void context_switch(ExecContext& ctx, Task& prev, Task& next);
  /// exit_mm(): the task drops its mm (it keeps it as active_mm until it switches out).
  void exit_mm(Task& t) { t.mm = nullptr; }

  SchedStats& stats() { return m_stats; }

 private:
  struct RunQueue {
    Task* curr = nullptr;
    Task* idle = nullptr;
    std::deque<Task*> queue;
  };
  bool allowed(const Task& t, unsigned cpu) const {
    return t.allowed_cpu < 0 || static_cast<unsigned>(t.allowed_cpu) == cpu;
  }
  /// nr_running of `cpu`: the current task (unless idle) plus the queued ones.
  unsigned nr_running(unsigned cpu) const {
    return nr_queued(cpu) + (m_rq[cpu].curr->is_idle ? 0 : 1);
  }
  unsigned select_task_rq(const Task& t, bool fork) const;
  void enqueue(Task& t, unsigned cpu);
  /// sched_balance_newidle(): a task another queue can give `cpu`, or nullptr.
  Task* newidle_balance(unsigned cpu);

  SchedConfig m_cfg;
  ArchMmu& m_arch;
  std::vector<std::unique_ptr<Task>> m_tasks;  // by pid
  std::vector<std::unique_ptr<Task>> m_idle;   // per CPU
  std::vector<RunQueue> m_rq;
  SchedStats m_stats;
};

}  // namespace tlbsim::mm
