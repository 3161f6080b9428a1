#include "models/cpu/core.h"

#include "base/trace_writer.h"
#include "models/system.h"

namespace tlbsim {

CoreSnapshot& CoreSnapshot::operator+=(const CoreSnapshot& o) {
  kernel_cycles += o.kernel_cycles;
  accesses += o.accesses;
  faults += o.faults;
  syscalls += o.syscalls;
  dtlb_misses += o.dtlb_misses;
  stlb_misses += o.stlb_misses;
  walks += o.walks;
  flush_requests += o.flush_requests;
  ipis_sent += o.ipis_sent;
  invlpg += o.invlpg;
  full_flushes += o.full_flushes;
  ipi_wait_cycles += o.ipi_wait_cycles;
  tlbis += o.tlbis;
  dsb_wait_cycles += o.dsb_wait_cycles;
  kernel_mem_cycles += o.kernel_mem_cycles;
  xlat_cycles += o.xlat_cycles;
  data_cycles += o.data_cycles;
  local_flush_cycles += o.local_flush_cycles;
  lock_wait_cycles += o.lock_wait_cycles;
  for (size_t i = 0; i < ops.size(); ++i) ops[i] += o.ops[i];
  return *this;
}

CoreSnapshot CoreSnapshot::operator-(const CoreSnapshot& o) const {
  CoreSnapshot d = *this;
  d.kernel_cycles -= o.kernel_cycles;
  d.accesses -= o.accesses;
  d.faults -= o.faults;
  d.syscalls -= o.syscalls;
  d.dtlb_misses -= o.dtlb_misses;
  d.stlb_misses -= o.stlb_misses;
  d.walks -= o.walks;
  d.flush_requests -= o.flush_requests;
  d.ipis_sent -= o.ipis_sent;
  d.invlpg -= o.invlpg;
  d.full_flushes -= o.full_flushes;
  d.ipi_wait_cycles -= o.ipi_wait_cycles;
  d.tlbis -= o.tlbis;
  d.dsb_wait_cycles -= o.dsb_wait_cycles;
  d.kernel_mem_cycles -= o.kernel_mem_cycles;
  d.xlat_cycles -= o.xlat_cycles;
  d.data_cycles -= o.data_cycles;
  d.local_flush_cycles -= o.local_flush_cycles;
  d.lock_wait_cycles -= o.lock_wait_cycles;
  for (size_t i = 0; i < ops.size(); ++i) d.ops[i] -= o.ops[i];
  return d;
}

Core::Core(sc_core::sc_module_name name, unsigned id, System& sys, StatGroup* stats_parent)
    : sc_core::sc_module(name),
      m_id(id),
      m_sys(sys),
      m_stats(stats_parent, "cpu[" + std::to_string(id) + "]"),
      m_kops_stats(&m_stats, "kernel_ops"),
      m_cache_stats(&m_stats, "cache") {
  for (size_t s = 0; s < static_cast<size_t>(MemSource::kCount); ++s) {
    auto g = std::make_unique<StatGroup>(&m_cache_stats, kMemSourceNames[s]);
    for (size_t l = 0; l < static_cast<size_t>(MemLevel::kCount); ++l)
      m_refs.push_back(std::make_unique<CounterRef>(
          g.get(), kMemLevelNames[l], "count", "References served at this level.",
          sys.memory().counter(id, static_cast<MemSource>(s), static_cast<MemLevel>(l))));
    m_cache_groups.push_back(std::move(g));
  }
  for (size_t i = 0; i < m_kops.size(); ++i)
    m_refs.push_back(std::make_unique<CounterRef>(&m_kops_stats, mm::kKOpNames[i], "count",
                                                  "Primitive kernel operations of this kind.",
                                                  &m_kops[i]));
  auto wire = [&](auto& mmu) {
    if (CoherenceChecker* c = sys.checker()) {
      mmu.set_frame_generations({c->generations()});
      mmu.set_stale_hook(&CoherenceChecker::on_stale, c);
      if (c->permissions_enabled()) mmu.set_permission_hook(&CoherenceChecker::on_hit, c);
      mmu.attach_residency(*c);
    }
  };
  handler_end.assign(sys.machine().cpus(), 0);
  if (sys.machine().arch() == "arm64") {
    m_arm64 = std::make_unique<arm64::Arm64CoreMmu>(id, sys.machine(), sys.phys(), sys.memory(),
                                                     &m_stats, sys.seed());
    wire(*m_arm64);
  } else {
    m_x86 = std::make_unique<x86::X86CoreMmu>(id, sys.machine(), sys.phys(), sys.memory(),
                                                 &m_stats, sys.seed());
    wire(*m_x86);
  }
  SC_METHOD(ipi_handler);
  sensitive << m_ipi_queue;
  dont_initialize();
}

CoreSnapshot Core::snapshot() const {
  CoreSnapshot s;
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
  s.lock_wait_cycles = m_lock_wait_cycles;
  s.ops = m_kops;
  return s;
}

void Core::begin_task(TaskThread* t, uint64_t at) {
  if (m_running) throw std::logic_error("begin_task on a CPU that runs a task");
  if (at > m_idle_since) m_stats.idle_cycles += at - m_idle_since;
  m_running = t;
  m_busy_since = at;
  m_stolen = 0;
  ++m_stats.context_switches;
}

void Core::end_task(uint64_t at) {
  if (!m_running) throw std::logic_error("end_task on an idle CPU");
  m_stats.busy_cycles += at - m_busy_since;
  m_stats.cycles.set(at);
  m_running = nullptr;
  m_idle_since = at;
  m_stolen = 0;
}

void Core::post_ipi(const IpiMessage& m) {
  // The mailbox is kept in delivery order (links differ by source).
  auto it = m_mailbox.end();
  while (it != m_mailbox.begin() && std::prev(it)->deliver_at > m.deliver_at) --it;
  m_mailbox.insert(it, m);
  m_ipi_queue.notify(cycles_to_sc(m.deliver_at - sc_now_cycles()));
}

void Core::irqs_off() {
  m_irqs_off = true;
  m_irqs_off_since = sc_now_cycles();
}

void Core::irqs_on() {
  m_irqs_off = false;
  const uint64_t t = sc_now_cycles();
  unsigned due = 0;
  for (const IpiMessage& m : m_mailbox) {
    if (m.deliver_at > t) break;
    ++due;
    m_stats.ipi_deferred_cycles += t - std::max(m.deliver_at, m_irqs_off_since);
  }
  if (due) {
    m_stats.ipis_deferred += due;
    m_ipi_queue.notify(sc_core::SC_ZERO_TIME);
  }
}

void Core::ipi_handler() {
  const uint64_t t = sc_now_cycles();
  if (m_irqs_off || m_mailbox.empty() || m_mailbox.front().deliver_at > t) return;
  if (m_irq_busy_until > t) {
    // In a handler already: the next message waits for it to return.
    m_ipi_queue.notify(cycles_to_sc(m_irq_busy_until - t));
    return;
  }
  const bool entry = m_irq_batch == 0;
  if (entry) {
    // Take the interrupt: it serves every message queued by now.
    for (const IpiMessage& m : m_mailbox) {
      if (m.deliver_at > t) break;
      ++m_irq_batch;
    }
    ++m_stats.interrupts;
  }
  const IpiMessage m = m_mailbox.front();
  m_mailbox.pop_front();
  --m_irq_batch;
  ++m_stats.ipis_received;
  const uint64_t cost = m_sys.x86()->handle_flush_ipi(*this, m.info, entry);
  m_stats.handler_cycles += cost;
  add_stolen(cost);
  m_irq_busy_until = t + cost;
  Core& from = m_sys.core(m.from);
  from.handler_end[m_id] = t + cost;
  if (TraceWriter* tw = m_sys.trace()) {
    tw->complete(m_id, "ipi", "flush IPI from cpu" + std::to_string(m.from), t, cost,
                 m.info.full() ? R"({"flush":"full"})"
                               : "{\"pages\":" + std::to_string(m.info.nr_steps()) + "}");
    tw->flow(m_sys.next_flow_id(), m.from, m.sent_at, m_id, t, "ipi");
  }
  if (--from.pending_acks == 0) from.ack_event().notify();
  if (!m_mailbox.empty()) m_ipi_queue.notify(cycles_to_sc(cost));
}

}  // namespace tlbsim
