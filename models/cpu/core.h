// A simulated CPU: one SC_THREAD replays its thread's op stream, loosely timed.
// Local time is a plain uint64 cycle count ahead of SystemC time, turned into a
// wait() only at synchronisation points: before every kernel entry, at barriers,
// when the quantum is used up, and when the thread ends (systemc-performance.md).
// SystemC time counts cycles: 1 cycle = 1 ns of sc_time.
//
// IPIs arrive in a mailbox and are handled by an SC_METHOD at their delivery time,
// even while the thread itself waits (so shootdowns cannot deadlock); the handler's
// cycles are "stolen" from the thread, which adds them at its next access.
//
// Arch-neutral: the core owns either an x86::X86CoreMmu or an arm64::Arm64CoreMmu
// (both satisfy the CoreMmu concept of core_mmu.h). The per-access loop is a
// template instantiated for each, dispatched once per touch op, so translation
// costs no virtual call.
//
// Harnesses may give a core a program (set_program) instead of a workload thread:
// C++ that calls the kernel and accesses memory through the helpers below; probe()
// translates through the TLBs and walker only and never enters the kernel, so a
// stale-TLB hit can be observed without a page fault ending the thread.
#pragma once

#include <systemc>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "base/stats.h"
#include "mm/arch/x86_tlb.h"
#include "mm/exec_context.h"
#include "mm/kernel.h"
#include "models/arm64/arm64_core_mmu.h"
#include "models/cpu/core_mmu.h"
#include "models/x86/x86_core_mmu.h"
#include "workloads/op.h"

namespace tlbsim {

class System;

inline uint64_t sc_now_cycles() { return sc_core::sc_time_stamp().value() / 1000; }
inline sc_core::sc_time cycles_to_sc(uint64_t c) {
  return sc_core::sc_time(static_cast<double>(c), sc_core::SC_NS);
}

struct CoreStats : StatGroup {
  CoreStats(StatGroup* parent, const std::string& name) : StatGroup(parent, name) {}
  Scalar cycles{this, "cycles", "cycles", "Time at which this CPU's thread finished."};
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
  Scalar ipi_wait_cycles{this, "ipi_wait_cycles", "cycles", "Initiator stall waiting for shootdown acks."};
  Scalar ipi_send_cycles{this, "ipi_send_cycles", "cycles", "Initiator cycles writing the ICR for IPIs."};
  Scalar handler_cycles{this, "handler_cycles", "cycles", "Cycles lost to IPI handlers (interrupt entry, flush, exit)."};
  Scalar local_flush_cycles{this, "local_flush_cycles", "cycles", "Cycles of INVLPG/CR3 flushes this CPU executed."};
  Scalar barrier_wait_cycles{this, "barrier_wait_cycles", "cycles", "Cycles waiting at barriers."};
  Scalar tlbi_sent{this, "tlbi_sent", "count", "arm64: broadcast TLBIs this CPU issued."};
  Scalar dsb_wait_cycles{this, "dsb_wait_cycles", "cycles", "arm64: cycles waiting for DSB ISH completion (queue included)."};
  Scalar dvm_queue_cycles{this, "dvm_queue_cycles", "cycles", "arm64: cycles queued behind other broadcasters at the DVM node."};
  Scalar dvm_victim_cycles{this, "dvm_victim_cycles", "cycles", "arm64: cycles stolen by other CPUs' broadcast TLBIs."};
  Scalar probes{this, "probes", "count", "Harness probes (translation without kernel entry)."};
  Scalar probe_faults{this, "probe_faults", "count", "Probes that found no translation."};
  Scalar syncs{this, "syncs", "count", "Synchronisations with SystemC time."};
  Scalar mm_lock_wait_cycles{this, "mm_lock_wait_cycles", "cycles", "Cycles waiting for an mm's kernel lock held by a CPU inside a TLB flush."};
};

/// A message in a CPU's IPI mailbox.
struct IpiMessage {
  uint64_t sent_at = 0;
  uint64_t deliver_at = 0;
  unsigned from = 0;
  mm::x86::FlushTlbInfo info;
};

class Core : public sc_core::sc_module, public mm::ExecHooks {
 public:
  SC_HAS_PROCESS(Core);
  Core(sc_core::sc_module_name name, unsigned id, System& sys, StatGroup* stats_parent);

  unsigned id() const { return m_id; }
  System& system() { return m_sys; }
  mm::ExecContext& ctx() { return m_ctx; }
  /// The x86 MMU (x86 machines only).
  x86::X86CoreMmu& mmu() { return *m_x86; }
  /// The arm64 MMU (arm64 machines only).
  arm64::Arm64CoreMmu& arm64_mmu() { return *m_arm64; }
  bool is_arm64() const { return m_arm64 != nullptr; }
  CoreStats& stats() { return m_stats; }
  /// Counters of this core's MMU, whichever it is.
  const CoreMmuCounters& mmu_counters() const {
    return m_x86 ? m_x86->counters() : m_arm64->counters();
  }
  const Tlb& l1d() const { return m_x86 ? m_x86->l1d() : m_arm64->l1d(); }
  const Tlb* l2() const { return m_x86 ? m_x86->l2() : m_arm64->l2(); }

  /// Assigns the thread this CPU runs (nullptr: idle).
  void assign(const workload::Thread* thread, unsigned process) {
    m_thread = thread;
    m_ops = &thread->ops;
    m_process = process;
  }
  /// A forked child starts running `ops` here now (System::spawn).
  void start(const std::vector<workload::Op>* ops, unsigned process) {
    m_ops = ops;
    m_process = process;
    m_busy = true;
    m_start_event.notify();
  }
  /// A thread is running (or about to run) on this CPU.
  bool busy() const { return m_busy; }
  /// Runs `program` instead of the thread's ops (harnesses). The core still starts
  /// by switching to its process's mm and ends with the thread-exit path.
  void set_program(std::function<void(Core&)> program) { m_program = std::move(program); }

  // --- harness helpers (call from a program) -----------------------------------------
  /// The process's mm.
  mm::Mm& process_mm();
  /// Runs kernel code on this CPU: synchronise, run `fn`, charge its primitive ops.
  void kernel_call(const std::function<void(mm::ExecContext&)>& fn);
  /// mmap(len) of anonymous read/write memory (populated if asked); returns the address.
  VirtAddr mmap(uint64_t len, bool populate = false);
  void munmap(VirtAddr addr, uint64_t len);
  /// A user access: page faults enter the kernel; a segmentation fault throws.
  void touch(VirtAddr va, Access kind);
  /// A user access that never enters the kernel: true when it translated.
  bool probe(VirtAddr va, Access kind);
  /// Barrier shared with the other programs (System::define_barrier).
  void barrier(const std::string& name);
  /// The CPU runs a kernel thread now (enter_lazy_tlb), keeping its user mm loaded.
  void go_lazy();
  /// The CPU returns to its process's user code (switch_mm).
  void resume_user();

  // --- time ---------------------------------------------------------------------------
  uint64_t now() const { return sc_now_cycles() + m_local; }
  void advance(uint64_t cycles) { m_local += cycles; }
  /// Catches SystemC time up with local time.
  void sync();
  /// Converts kernel primitive counts since the last charge into cycles.
  void charge_kernel();

  // --- mm::ExecHooks: what kernel code on this CPU reports ---------------------------
  void mem_lines(mm::ExecContext& ctx, mm::MemRefKind kind, uint64_t first, uint64_t nr,
                 bool write) override;
  void progress(mm::ExecContext& ctx) override;

  // --- used by the x86 shootdown model -------------------------------------------
  void post_ipi(const IpiMessage& m);
  void add_stolen(uint64_t c) { m_stolen += c; }
  /// Current translation context (set by the arch on CR3 / TTBR0 loads): x86 PCID
  /// or arm64 ASID, and the root table (Pfn() = no user address space).
  void set_context(uint16_t asid, Pfn root) {
    m_asid = asid;
    m_root = root;
  }
  sc_core::sc_event& ack_event() { return m_ack_event; }
  unsigned pending_acks = 0;
  /// When each target CPU's flush handler finished (indexed by CPU), for the
  /// initiator's csd_lock_wait() polling.
  std::vector<uint64_t> handler_end;

 private:
  void run();
  void run_thread();
  void ipi_handler();
  void exec_ops(const std::vector<workload::Op>& ops);
  void exec_op(const workload::Op& op);
  void op_touch(const workload::Op& op);
  template <CoreMmu Mmu>
  void op_touch_with(Mmu& mmu, const workload::Op& op);
  template <CoreMmu Mmu>
  void op_replay_with(Mmu& mmu, const workload::Op& op);
  template <CoreMmu Mmu>
  void access(Mmu& mmu, VirtAddr va, Access kind, const std::string& pointer);
  /// Cycles of one user access whose translation took `r` (no fault): the data
  /// reference through the cache hierarchy, with the MLP overlap of everything
  /// beyond an L1 hit.
  [[gnu::always_inline]] uint64_t user_access_cycles(const XlatResult& r, uint64_t& data) {
    const CacheHierarchy::Result d = m_mem->access(m_id, r.pa, MemSource::kUser);
    const uint64_t beyond = d.cycles - m_l1_cycles;
    data += beyond;
    return m_access_cycles + (((r.cycles + beyond) * m_inv_mlp_q16) >> 16);
  }
  /// A workload barrier: "block" sleeps in the kernel (futex: the CPU idles with the
  /// mm loaded lazily), "spin" busy-waits in user mode (the CPU keeps running the mm).
  void barrier_op(const workload::Op& op);
  /// The mapping's length and the window's length of a syscall_on_window().
  struct Window {
    uint64_t mapping_len;
    uint64_t length;
  };
  template <class Call>
  Window syscall_on_window(const workload::Op& op, Call&& call);
  /// Timeline event for kernel work that started at `start` (when tracing).
  void trace_span(const char* cat, const std::string& name, uint64_t start,
                  const std::string& args = "");
  template <CoreMmu Mmu>
  void retry_after_fault(Mmu& mmu, VirtAddr va, Access kind, const std::string& pointer);
  void sync_if_due() {
    if (m_local >= m_quantum) sync();
  }
  void enter_region(const std::string& name);
  void leave_region(const std::string& name);

  /// Counters read at region entry and exit.
  struct Snapshot {
    uint64_t now = 0, kernel_cycles = 0, accesses = 0, faults = 0, syscalls = 0;
    uint64_t dtlb_misses = 0, stlb_misses = 0, walks = 0, flush_requests = 0, ipis_sent = 0;
    uint64_t invlpg = 0, full_flushes = 0, ipi_wait_cycles = 0;
    uint64_t tlbis = 0, dsb_wait_cycles = 0;
    uint64_t kernel_mem_cycles = 0, xlat_cycles = 0, data_cycles = 0, local_flush_cycles = 0;
    std::array<uint64_t, static_cast<size_t>(mm::KOp::kCount)> ops{};
  };
  Snapshot snapshot() const;
  Snapshot m_region_snapshot;

  unsigned m_id;
  System& m_sys;
  const workload::Thread* m_thread = nullptr;
  const std::vector<workload::Op>* m_ops = nullptr;  // what the thread runs
  bool m_busy = false;
  bool m_exiting = false;               // the thread ran an exit op
  std::vector<unsigned> m_children;     // processes this thread forked
  sc_core::sc_event m_start_event;
  unsigned m_process = 0;
  mm::ExecContext m_ctx;
  std::array<uint64_t, static_cast<size_t>(mm::KOp::kCount)> m_charged{};
  std::array<uint64_t, static_cast<size_t>(mm::KOp::kCount)> m_costs{};
  uint64_t m_local = 0;
  uint64_t m_stolen = 0;
  uint64_t m_quantum;
  uint64_t m_access_cycles;
  CacheHierarchy* m_mem;
  uint64_t m_l1_cycles;
  uint64_t m_inv_mlp_q16;  // 65536 / machine.cache.mlp
  uint64_t m_vmemmap;      // struct page array base in the hierarchy's address space
  uint16_t m_asid = 0;
  Pfn m_root;
  std::function<void(Core&)> m_program;
  CoreStats m_stats;
  StatGroup m_kops_stats;
  StatGroup m_cache_stats;
  std::vector<std::unique_ptr<StatBase>> m_kop_refs;
  std::vector<std::unique_ptr<StatGroup>> m_cache_groups;
  std::vector<uint64_t> m_region_start;  // entry times of open regions (tracing)
  std::unique_ptr<x86::X86CoreMmu> m_x86;
  std::unique_ptr<arm64::Arm64CoreMmu> m_arm64;
  std::deque<IpiMessage> m_mailbox;
  sc_core::sc_event_queue m_ipi_queue;
  sc_core::sc_event m_ack_event;
};

}  // namespace tlbsim
