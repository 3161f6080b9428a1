// A simulated CPU, hardware only: its MMU (TLBs, walk caches, walker), its view of
// the cache hierarchy, its interrupt controller and its counters. Software runs on
// it as tasks (models/task/task_thread.h): the scheduler hands the CPU to one task
// at a time, and that task's SystemC thread executes, loosely timed.
//
// Interrupts, as a CPU sees them:
//   * IPIs arrive in a mailbox and are taken by an SC_METHOD at their delivery time,
//     one interrupt after another: a CPU already in a handler takes the next one when
//     it returns; messages queued before an interrupt is taken are served by that
//     interrupt (one entry/exit, then each callback in order: Linux's
//     flush_smp_call_function_queue()).
//   * While the running task has interrupts off (irqs_off()), delivery waits until
//     irqs_on().
//   * Handler cycles are the running task's ("stolen": it picks them up at its next
//     synchronisation point); on a CPU running no task they are idle time, and no
//     later task ever pays them.
//
// arm64 broadcast TLBIs reach this CPU's TLBs through the DVM node
// (models/arm64/dvm_node.h); a DVM snoop stall is stolen like an interrupt.
#pragma once

#include <systemc>

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "base/stats.h"
#include "mm/arch/x86_tlb.h"
#include "mm/exec_context.h"
#include "models/arm64/arm64_core_mmu.h"
#include "models/cpu/core_mmu.h"
#include "models/x86/x86_core_mmu.h"

namespace tlbsim {

class System;
class TaskThread;

inline uint64_t sc_now_cycles() { return sc_core::sc_time_stamp().value() / 1000; }
inline sc_core::sc_time cycles_to_sc(uint64_t c) {
  return sc_core::sc_time(static_cast<double>(c), sc_core::SC_NS);
}

/// Per-CPU counters: what ran on this CPU, whichever task it was.
struct CoreStats : StatGroup {
  CoreStats(StatGroup* parent, const std::string& name) : StatGroup(parent, name) {}
  Scalar cycles{this, "cycles", "cycles", "Time at which this CPU last stopped running a task."};
  Scalar busy_cycles{this, "busy_cycles", "cycles", "Cycles a task ran on this CPU (user, kernel and spinning)."};
  Scalar idle_cycles{this, "idle_cycles", "cycles", "Cycles between tasks: the idle task ran, with the last mm loaded lazily."};
  Scalar context_switches{this, "context_switches", "count", "Tasks that started running here (after a switch from another task or from idle)."};
  Scalar accesses{this, "accesses", "count", "User memory accesses translated."};
  Scalar faults{this, "faults", "count", "Page faults taken."};
  Scalar syscalls{this, "syscalls", "count", "System calls made."};
  Scalar kernel_cycles{this, "kernel_cycles", "cycles", "Cycles of kernel work (cost table x primitive counts)."};
  Scalar xlat_cycles{this, "xlat_cycles", "cycles", "Cycles of address translation beyond an L1 TLB hit."};
  Scalar data_cycles{this, "data_cycles", "cycles", "Cycles of user data accesses beyond an L1 cache hit (before the MLP overlap)."};
  Scalar kernel_mem_cycles{this, "kernel_mem_cycles", "cycles", "Cycles of kernel metadata and page-table line references beyond L1 (included in kernel_cycles)."};
  Scalar flush_requests{this, "flush_requests", "count", "flush_tlb_mm_range calls this CPU initiated."};
  Scalar ipis_sent{this, "ipis_sent", "count", "TLB-shootdown IPIs sent."};
  Scalar ipis_received{this, "ipis_received", "count", "TLB-shootdown IPIs handled."};
  Scalar interrupts{this, "interrupts", "count", "Interrupts taken for IPIs (one may serve several queued IPIs)."};
  Scalar ipis_deferred{this, "ipis_deferred", "count", "IPIs that arrived while interrupts were off and waited for irqs_on."};
  Scalar ipi_deferred_cycles{this, "ipi_deferred_cycles", "cycles", "Cycles IPIs waited for interrupts to be re-enabled."};
  Scalar ipi_wait_cycles{this, "ipi_wait_cycles", "cycles", "Initiator stall waiting for shootdown acks."};
  Scalar ipi_send_cycles{this, "ipi_send_cycles", "cycles", "Initiator cycles writing the ICR for IPIs."};
  Scalar handler_cycles{this, "handler_cycles", "cycles", "Cycles of IPI handlers (interrupt entry, flush, exit)."};
  Scalar irq_idle_cycles{this, "irq_idle_cycles", "cycles", "Handler and DVM-snoop cycles while no task ran here (idle time; no task pays them)."};
  Scalar local_flush_cycles{this, "local_flush_cycles", "cycles", "Cycles of INVLPG/CR3 flushes this CPU executed."};
  Scalar barrier_wait_cycles{this, "barrier_wait_cycles", "cycles", "Cycles tasks spun here at barriers and semaphores (await) in user mode (sleeping waits are idle time)."};
  Scalar lock_spin_cycles{this, "lock_spin_cycles", "cycles", "Cycles tasks spun here waiting for kernel spinlocks."};
  Scalar tlbi_sent{this, "tlbi_sent", "count", "arm64: broadcast TLBIs this CPU issued."};
  Scalar tlbi_local{this, "tlbi_local", "count", "arm64: local (non-broadcast) TLBIs this CPU issued."};
  Scalar dsb_wait_cycles{this, "dsb_wait_cycles", "cycles", "arm64: cycles waiting for DSB ISH completion (queue included)."};
  Scalar dvm_queue_cycles{this, "dvm_queue_cycles", "cycles", "arm64: cycles queued behind other broadcasters at the DVM node."};
  Scalar dvm_victim_cycles{this, "dvm_victim_cycles", "cycles", "arm64: cycles stolen by other CPUs' broadcast TLBIs."};
  Scalar probes{this, "probes", "count", "Harness probes (translation without kernel entry)."};
  Scalar probe_faults{this, "probe_faults", "count", "Probes that found no translation."};
  Scalar syncs{this, "syncs", "count", "Synchronisations with SystemC time."};
};

/// A message in a CPU's IPI mailbox.
struct IpiMessage {
  uint64_t sent_at = 0;
  uint64_t deliver_at = 0;
  unsigned from = 0;
  mm::x86::FlushTlbInfo info;
};

/// Counters read at region entry and exit (the running task's share of them is
/// taken between its switch-in and switch-out).
struct CoreSnapshot {
  uint64_t kernel_cycles = 0, accesses = 0, faults = 0, syscalls = 0;
  uint64_t dtlb_misses = 0, stlb_misses = 0, walks = 0, flush_requests = 0, ipis_sent = 0;
  uint64_t invlpg = 0, full_flushes = 0, ipi_wait_cycles = 0;
  uint64_t tlbis = 0, dsb_wait_cycles = 0;
  uint64_t kernel_mem_cycles = 0, xlat_cycles = 0, data_cycles = 0, local_flush_cycles = 0;
  uint64_t lock_wait_cycles = 0;
  std::array<uint64_t, static_cast<size_t>(mm::KOp::kCount)> ops{};
  CoreSnapshot& operator+=(const CoreSnapshot& o);
  CoreSnapshot operator-(const CoreSnapshot& o) const;
};

class Core : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Core);
  Core(sc_core::sc_module_name name, unsigned id, System& sys, StatGroup* stats_parent);

  unsigned id() const { return m_id; }
  System& system() { return m_sys; }
  /// The x86 MMU (x86 machines only).
  x86::X86CoreMmu& mmu() { return *m_x86; }
  /// The arm64 MMU (arm64 machines only).
  arm64::Arm64CoreMmu& arm64_mmu() { return *m_arm64; }
  bool is_arm64() const { return m_arm64 != nullptr; }
  CoreStats& stats() { return m_stats; }
  const CoreMmuCounters& mmu_counters() const {
    return m_x86 ? m_x86->counters() : m_arm64->counters();
  }
  const Tlb& l1d() const { return m_x86 ? m_x86->l1d() : m_arm64->l1d(); }
  const Tlb* l2() const { return m_x86 ? m_x86->l2() : m_arm64->l2(); }
  /// Primitive kernel operations executed here (the tasks add what they charge).
  std::array<uint64_t, static_cast<size_t>(mm::KOp::kCount)>& kernel_ops() { return m_kops; }
  /// Cycles tasks waited for kernel locks while on this CPU (spinning or asleep).
  uint64_t& lock_wait_cycles() { return m_lock_wait_cycles; }
  CoreSnapshot snapshot() const;

  // --- translation context (set by the arch on CR3 / TTBR0 loads) ---------------
  /// x86 PCID or arm64 ASID, and the root table (Pfn() = no user address space).
  void set_context(uint16_t asid, Pfn root) {
    m_asid = asid;
    m_root = root;
  }
  uint16_t asid() const { return m_asid; }
  Pfn root() const { return m_root; }

  // --- who runs here --------------------------------------------------------------
  /// The task running now, or nullptr (idle).
  TaskThread* running() const { return m_running; }
  /// Task `t` starts running at `at` (≥ the end of any interrupt in progress).
  void begin_task(TaskThread* t, uint64_t at);
  /// The running task stopped at `at`; the CPU idles until the next begin_task.
  void end_task(uint64_t at);

  // --- interrupts -------------------------------------------------------------------
  void post_ipi(const IpiMessage& m);
  /// Interrupt or snoop cycles: the running task's (stolen), else idle time.
  void add_stolen(uint64_t c) {
    if (m_running) {
      m_stolen += c;
    } else {
      m_stats.irq_idle_cycles += c;
    }
  }
  /// The stolen cycles the running task has not picked up yet (and clears them).
  uint64_t take_stolen() {
    const uint64_t s = m_stolen;
    m_stolen = 0;
    return s;
  }
  /// When the interrupt being handled (if any) returns.
  uint64_t irq_busy_until() const { return m_irq_busy_until; }
  /// The running task disables / re-enables interrupts at SystemC time now.
  void irqs_off();
  void irqs_on();
  bool irqs_disabled() const { return m_irqs_off; }
  sc_core::sc_event& ack_event() { return m_ack_event; }
  unsigned pending_acks = 0;
  /// When each target CPU's flush handler finished (indexed by CPU), for the
  /// initiator's csd_lock_wait() polling.
  std::vector<uint64_t> handler_end;

 private:
  void ipi_handler();

  unsigned m_id;
  System& m_sys;
  std::array<uint64_t, static_cast<size_t>(mm::KOp::kCount)> m_kops{};
  uint64_t m_lock_wait_cycles = 0;
  uint16_t m_asid = 0;
  Pfn m_root;
  TaskThread* m_running = nullptr;
  uint64_t m_idle_since = 0;
  uint64_t m_busy_since = 0;
  uint64_t m_stolen = 0;
  // interrupts
  std::deque<IpiMessage> m_mailbox;
  sc_core::sc_event_queue m_ipi_queue;
  sc_core::sc_event m_ack_event;
  bool m_irqs_off = false;
  uint64_t m_irqs_off_since = 0;
  uint64_t m_irq_busy_until = 0;
  unsigned m_irq_batch = 0;  // messages the interrupt in progress still serves
  CoreStats m_stats;
  StatGroup m_kops_stats;
  StatGroup m_cache_stats;
  std::vector<std::unique_ptr<StatBase>> m_refs;
  std::vector<std::unique_ptr<StatGroup>> m_cache_groups;
  std::unique_ptr<x86::X86CoreMmu> m_x86;
  std::unique_ptr<arm64::Arm64CoreMmu> m_arm64;
};

}  // namespace tlbsim
