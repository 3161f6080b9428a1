#include "mm/sched.h"

#include <stdexcept>

#include "mm/arch_mmu.h"

namespace tlbsim::mm {

Scheduler::Scheduler(const SchedConfig& cfg, ArchMmu& arch, StatGroup* stats_parent)
    : m_cfg(cfg), m_arch(arch), m_rq(cfg.nr_cpus), m_stats(stats_parent) {
  if (m_cfg.llc_of.size() != cfg.nr_cpus) m_cfg.llc_of.assign(cfg.nr_cpus, 0);
  for (unsigned c = 0; c < cfg.nr_cpus; ++c) {
    auto idle = std::make_unique<Task>();
    idle->pid = ~0u - c;
    idle->name = "swapper/" + std::to_string(c);
    idle->is_idle = true;
    idle->allowed_cpu = static_cast<int>(c);
    idle->cpu = c;
    idle->state = TaskState::kRunning;
    m_rq[c].idle = idle.get();
    m_rq[c].curr = idle.get();
    m_idle.push_back(std::move(idle));
  }
}

Task& Scheduler::create_task(unsigned tgid, Mm* mm, int allowed_cpu, std::string name) {
  if (allowed_cpu >= static_cast<int>(nr_cpus()))
    throw std::logic_error("create_task: CPU out of range");
  auto t = std::make_unique<Task>();
  t->pid = static_cast<unsigned>(m_tasks.size());
  t->tgid = tgid;
  t->name = std::move(name);
  t->mm = mm;
  t->active_mm = mm;
  t->allowed_cpu = allowed_cpu;
  t->cpu = allowed_cpu >= 0 ? static_cast<unsigned>(allowed_cpu) : 0;
  t->state = TaskState::kSleeping;
  m_tasks.push_back(std::move(t));
  return *m_tasks.back();
}

unsigned Scheduler::select_task_rq(const Task& t, bool fork) const {
  // Mirrors the outcome of kernel/sched/fair.c:select_task_rq_fair() in the common
  // cases, without load arithmetic.
  if (t.allowed_cpu >= 0) return static_cast<unsigned>(t.allowed_cpu);
  const unsigned n = nr_cpus();
  if (fork) {
    // sched_balance_find_dst_cpu() (find_idlest_cpu): the least loaded CPU; among
    // equals the lowest-numbered one.
    unsigned best = 0;
    for (unsigned c = 1; c < n; ++c)
      if (nr_running(c) < nr_running(best)) best = c;
    return best;
  }
  // select_idle_sibling(): the previous CPU if idle, else an idle CPU of its LLC
  // scanning from the next one, else stay.
  const unsigned prev = t.cpu;
  if (cpu_idle(prev)) return prev;
  for (unsigned i = 1; i < n; ++i) {
    const unsigned c = (prev + i) % n;
    if (m_cfg.llc_of[c] == m_cfg.llc_of[prev] && cpu_idle(c)) return c;
  }
  return prev;
}

void Scheduler::enqueue(Task& t, unsigned cpu) {
  if (t.cpu != cpu) {
    ++t.nr_migrations;
    ++m_stats.migrations;
  }
  t.cpu = cpu;
  t.state = TaskState::kRunnable;
  if (cpu_idle(cpu)) ++m_stats.wakeups_idle_cpu;
  m_rq[cpu].queue.push_back(&t);
}

unsigned Scheduler::wake_up_new_task(Task& t) {
  if (t.state != TaskState::kSleeping) throw std::logic_error("wake_up_new_task of a started task");
  const unsigned cpu = select_task_rq(t, true);
  t.cpu = cpu;  // placement of a new task is not a migration
  enqueue(t, cpu);
  return cpu;
}

int Scheduler::try_to_wake_up(Task& t) {
  if (t.state != TaskState::kSleeping) return -1;
  ++m_stats.wakeups;
  const unsigned cpu = select_task_rq(t, false);
  enqueue(t, cpu);
  return static_cast<int>(cpu);
}

void Scheduler::set_cpus_allowed(Task& t, int cpu) {
  if (cpu >= static_cast<int>(nr_cpus())) throw std::logic_error("set_cpus_allowed: CPU out of range");
  t.allowed_cpu = cpu;
  if (t.state != TaskState::kRunnable || allowed(t, t.cpu)) return;
  auto& q = m_rq[t.cpu].queue;
  for (auto it = q.begin(); it != q.end(); ++it)
    if (*it == &t) {
      q.erase(it);
      break;
    }
  enqueue(t, select_task_rq(t, false));
}

Task* Scheduler::newidle_balance(unsigned cpu) {
  if (!m_cfg.newidle_balance) return nullptr;
  // The busiest queue (most waiting tasks; the lowest CPU among equals) that holds
  // a task allowed here; take the one that waited longest.
  int best = -1;
  for (unsigned c = 0; c < nr_cpus(); ++c) {
    if (c == cpu || m_rq[c].queue.empty()) continue;
    bool movable = false;
    for (Task* t : m_rq[c].queue) movable |= allowed(*t, cpu);
    if (movable && (best < 0 || nr_queued(c) > nr_queued(static_cast<unsigned>(best))))
      best = static_cast<int>(c);
  }
  if (best < 0) return nullptr;
  auto& q = m_rq[static_cast<unsigned>(best)].queue;
  for (auto it = q.begin(); it != q.end(); ++it) {
    if (!allowed(**it, cpu)) continue;
    Task* t = *it;
    q.erase(it);
    ++m_stats.newidle_pulls;
    ++m_stats.migrations;
    ++t->nr_migrations;
    t->cpu = cpu;
    return t;
  }
  return nullptr;
}

Task& Scheduler::schedule(unsigned cpu, bool preempted) {
  RunQueue& rq = m_rq[cpu];
  Task& prev = *rq.curr;
  if (prev.is_idle) throw std::logic_error("schedule() from the idle task: use schedule_idle()");
  switch (prev.state) {
    case TaskState::kRunnable:
      if (preempted) {
        ++prev.nivcsw;
        ++m_stats.preemptions;
      }
      enqueue(prev, allowed(prev, cpu) ? cpu : select_task_rq(prev, false));
      break;
    case TaskState::kSleeping:
      ++prev.nvcsw;
      break;
    case TaskState::kDead:
      break;
    case TaskState::kRunning:
      throw std::logic_error("schedule(): the current task's state was not set");
  }
  Task* next = nullptr;
  if (!rq.queue.empty()) {
    next = rq.queue.front();
    rq.queue.pop_front();
  } else if ((next = newidle_balance(cpu)) == nullptr) {
    next = rq.idle;
  }
  next->state = TaskState::kRunning;
  rq.curr = next;
  return *next;
}

Task& Scheduler::schedule_idle(unsigned cpu) {
  RunQueue& rq = m_rq[cpu];
  if (!rq.curr->is_idle || rq.queue.empty())
    throw std::logic_error("schedule_idle(): the CPU is not idle with a queued task");
  Task* next = rq.queue.front();
  rq.queue.pop_front();
  next->state = TaskState::kRunning;
  rq.curr = next;
  return *next;
}

void Scheduler::context_switch(ExecContext& ctx, Task& prev, Task& next) {
  // Mirrors kernel/sched/core.c:context_switch() (the mm part).
  ++m_stats.context_switches;
  ctx.count(KOp::kContextSwitch);
  if (!next.mm) {
    // A kernel thread (here: the idle task) borrows the previous mm.
    next.active_mm = prev.active_mm;
    if (next.active_mm) {
      ++m_stats.lazy_entries;
      m_arch.enter_lazy_tlb(ctx);
    }
  } else {
    if (prev.active_mm == next.mm && !prev.mm) ++m_stats.lazy_exits;
    if (prev.active_mm != next.mm) ++m_stats.switch_mm;
    m_arch.switch_mm(ctx, *next.mm);
  }
  // A task that left its mm (exit_mm) or a kernel thread drops the borrowed one.
  if (!prev.mm) prev.active_mm = nullptr;
}

}  // namespace tlbsim::mm
