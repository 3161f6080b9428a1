#include "models/task/lock_model.h"

#include <algorithm>
#include <stdexcept>

#include "models/system.h"
#include "models/task/task_thread.h"

namespace tlbsim {

struct LockModel::Waiter {
  Waiter(TaskThread* t, mm::LockMode m, mm::LockClass c) : task(t), mode(m), cls(c) {}
  TaskThread* task;
  mm::LockMode mode;
  mm::LockClass cls;
  bool granted = false;
  uint64_t resume_at = 0;
  sc_core::sc_event event;
};

LockModel::LockModel(System& sys, StatGroup* stats_parent)
    : m_sys(sys),
      m_same_socket(sys.machine().topology.line_transfer_cycles()),
      m_cross_socket(sys.machine().topology.line_transfer_cross_socket_cycles()),
      m_group(stats_parent, "locks") {
  for (size_t c = 0; c < m_stats.size(); ++c)
    m_stats[c] = std::make_unique<LockClassStats>(&m_group, mm::kLockClassNames[c]);
}

LockModel::~LockModel() = default;

uint64_t LockModel::line_transfer(unsigned from, unsigned to) const {
  if (from == to) return 0;
  return m_sys.topology().same_socket(from, to) ? m_same_socket : m_cross_socket;
}

LockModel::Queue& LockModel::queue_of(mm::KernelLock& l) {
  if (!l.wait_queue) {
    Queue* q;
    if (!m_free.empty()) {
      q = m_free.back();
      m_free.pop_back();
    } else {
      q = &m_queues.emplace_back();
    }
    l.wait_queue = q;
  }
  return *static_cast<Queue*>(l.wait_queue);
}

void LockModel::pull_line(TaskThread& t, LockClassStats& st, unsigned from) {
  // The lock word's cache line comes from the CPU that last took it.
  ++st.line_transfers;
  const uint64_t c = line_transfer(from, t.cpu_id());
  t.core().stats().kernel_mem_cycles += c;
  t.core().stats().kernel_cycles += c;
  t.advance(c);
}

void LockModel::acquire(TaskThread& t, mm::KernelLock& l, mm::LockMode mode) {
  LockClassStats& st = stats(l.lock_class());
  mm::ExecContext& ctx = t.ctx();
  if (l.sleeps() && ctx.spin_depth)
    throw std::logic_error(std::string("sleeping lock ") +
                           mm::kLockClassNames[static_cast<size_t>(l.lock_class())] +
                           " taken with a spinlock held (might_sleep)");
  const unsigned cpu = t.cpu_id();
  const bool remote = l.last_cpu() >= 0 && static_cast<unsigned>(l.last_cpu()) != cpu;
  if (remote || l.held() || l.waiters()) {
    // Another CPU touched it: take it in simulated-time order.
    t.charge_kernel();
    t.sync();
  }
  if (l.irqsave()) t.irq_disable();
  ++st.acquired;
  const int last = l.last_cpu();
  if (l.try_acquire(mode, cpu)) {
    if (remote) pull_line(t, st, static_cast<unsigned>(last));
    if (mode == mm::LockMode::kExclusive) l.owner = &t;
    return;
  }
  if (remote) ++st.line_transfers;  // the hand-over brings the line (grant_waiters)
  ++st.contended;
  Waiter w(&t, mode, l.lock_class());
  queue_of(l).waiters.push_back(&w);
  l.add_waiter();
  m_all.push_back(&w);
  t.charge_kernel();
  t.sync();
  const uint64_t t0 = t.now();
  if (l.sleeps()) {
    if (t.core().irqs_disabled()) throw std::logic_error("sleeping with interrupts off");
    ++st.sleeps;
    while (!w.granted) t.block();
  } else {
    while (!w.granted) sc_core::wait(w.event);
    const uint64_t now = sc_now_cycles();
    if (w.resume_at > now) sc_core::wait(cycles_to_sc(w.resume_at - now));
    t.absorb_irqs();
    t.core().stats().lock_spin_cycles += t.now() - t0;
  }
  const uint64_t waited = t.now() - t0;
  st.wait_cycles += waited;
  if (waited > st.max_wait_cycles.value()) st.max_wait_cycles.set(waited);
  t.core().lock_wait_cycles() += waited;
  t.stats().lock_wait_cycles += waited;
  m_all.erase(std::find(m_all.begin(), m_all.end(), &w));
  if (mode == mm::LockMode::kExclusive) l.owner = &t;
}

bool LockModel::try_acquire(TaskThread& t, mm::KernelLock& l, mm::LockMode mode) {
  if (l.irqsave()) throw std::logic_error("trylock of an irqsave lock class");
  const unsigned cpu = t.cpu_id();
  const int last = l.last_cpu();
  const bool remote = last >= 0 && static_cast<unsigned>(last) != cpu;
  if (remote || l.held() || l.waiters()) {
    t.charge_kernel();
    t.sync();
  }
  if (!l.try_acquire(mode, cpu)) return false;
  LockClassStats& st = stats(l.lock_class());
  ++st.acquired;
  if (remote) pull_line(t, st, static_cast<unsigned>(last));
  if (mode == mm::LockMode::kExclusive) l.owner = &t;
  return true;
}

void LockModel::grant_waiters(TaskThread& releaser, mm::KernelLock& l) {
  auto* q = static_cast<Queue*>(l.wait_queue);
  if (!q) return;
  auto grant = [&](Waiter* w) {
    w->granted = true;
    l.remove_waiter();
    const uint64_t transfer = line_transfer(releaser.cpu_id(), w->task->cpu_id());
    if (mm::lock_class_sleeps(w->cls)) {
      releaser.wake(*w->task, transfer);
    } else {
      w->resume_at = releaser.now() + transfer;
      w->event.notify(cycles_to_sc(w->resume_at - sc_now_cycles()));
    }
  };
  if (!q->waiters.empty()) {
    Waiter* head = q->waiters.front();
    if (head->mode == mm::LockMode::kExclusive) {
      if (!l.held()) {
        l.try_acquire(mm::LockMode::kExclusive, head->task->cpu_id(), true);
        q->waiters.pop_front();
        grant(head);
      }
    } else if (!l.held_exclusive()) {
      // rwsem_mark_wake(): every queued reader gets it; writers keep their place.
      for (auto it = q->waiters.begin(); it != q->waiters.end();) {
        if ((*it)->mode != mm::LockMode::kShared) {
          ++it;
          continue;
        }
        Waiter* w = *it;
        it = q->waiters.erase(it);
        l.try_acquire(mm::LockMode::kShared, w->task->cpu_id(), true);
        grant(w);
      }
    }
  }
  if (q->waiters.empty()) {
    l.wait_queue = nullptr;
    m_free.push_back(q);
  }
}

void LockModel::release(TaskThread& t, mm::KernelLock& l, mm::LockMode mode) {
  l.release(mode);
  if (mode == mm::LockMode::kExclusive) l.owner = nullptr;
  if (l.waiters()) grant_waiters(t, l);
  if (l.irqsave()) t.irq_enable();
}

void LockModel::downgrade(TaskThread& t, mm::KernelLock& l) {
  l.downgrade();
  l.owner = nullptr;
  if (l.waiters()) grant_waiters(t, l);
}

std::string LockModel::waiters_report() const {
  std::string out;
  for (const Waiter* w : m_all) {
    out += "task " + w->task->task().name + " (pid " + std::to_string(w->task->pid()) +
           ") waits for a " + mm::kLockClassNames[static_cast<size_t>(w->cls)] +
           (w->mode == mm::LockMode::kShared ? " (read)" : "") + "\n";
  }
  return out;
}

}  // namespace tlbsim
