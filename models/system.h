// One simulated machine running one workload: memory, kernel, architecture, CPUs,
// interconnect and the checkers, wired from a machine preset, a kernel profile and
// a workload; the workload's threads become tasks (TaskThread) that the kernel's
// scheduler (mm/sched.h) places on the CPUs. SystemC elaborates once per process, so
// a process builds one System.
#pragma once

#include <systemc>

#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/stats.h"
#include "base/trace_writer.h"
#include "mm/kernel.h"
#include "mm/kernel_profile.h"
#include "mm/phys_mem.h"
#include "models/coherence_checker.h"
#include "models/cpu/core.h"
#include "mm/sched.h"
#include "models/task/lock_model.h"
#include "models/task/task_thread.h"
#include "models/interconnect/topology.h"
#include "models/machine_params.h"
#include "models/mem/cache_hierarchy.h"
#include "models/arm64/arm64_system_mmu.h"
#include "models/x86/x86_system_mmu.h"
#include "workloads/op.h"

namespace tlbsim {

/// Statistics of one named measurement region (summed over the CPUs that ran it).
struct RegionStats : StatGroup {
  /// `arm64`: the invalidation counters also appear under their arm64 names
  /// (tlbi_by_va, tlbi_asid); on x86 under INVLPG's and the PCID flush's (invlpg,
  /// full_flushes).
  RegionStats(StatGroup* parent, const std::string& name, bool arm64) : StatGroup(parent, name) {
    for (size_t i = 0; i < kernel_ops.size(); ++i)
      kernel_ops[i] = std::make_unique<Scalar>(&ops_group, mm::kKOpNames[i], "count",
                                               "Primitive kernel operations of this kind.");
    if (arm64) {
      arch_by_va = std::make_unique<CounterRef>(
          this, "tlbi_by_va", "count",
          "arm64: TLBI VAE1/VALE1/RVAE1(IS) applied to the CPUs inside the region (= inval_by_va).",
          &inval_by_va);
      arch_full = std::make_unique<CounterRef>(
          this, "tlbi_asid", "count",
          "arm64: TLBI ASIDE1(IS)/VMALLE1 applied to the CPUs inside the region (= inval_full).",
          &inval_full);
    } else {
      arch_by_va = std::make_unique<CounterRef>(
          this, "invlpg", "count", "x86: INVLPGs executed by the CPUs inside the region (= inval_by_va).",
          &inval_by_va);
      arch_full = std::make_unique<CounterRef>(
          this, "full_flushes", "count",
          "x86: full flushes of a PCID (CR3 write / INVPCID) executed by the CPUs inside the region "
          "(= inval_full).",
          &inval_full);
    }
  }
  Scalar entries{this, "entries", "count", "Times a thread entered the region."};
  Scalar cycles{this, "cycles", "cycles", "Wall-clock cycles from the first entry to the last exit."};
  Scalar cpu_cycles{this, "cpu_cycles", "cycles", "Cycles summed over the CPUs inside the region."};
  Scalar kernel_cycles{this, "kernel_cycles", "cycles", "Kernel work cycles inside the region."};
  Scalar accesses{this, "accesses", "count", "Memory accesses."};
  Scalar faults{this, "faults", "count", "Page faults."};
  Scalar syscalls{this, "syscalls", "count", "System calls."};
  Scalar dtlb_misses{this, "dtlb_misses", "count", "L1 dTLB misses."};
  Scalar stlb_misses{this, "stlb_misses", "count", "STLB misses."};
  Scalar walks{this, "walks", "count", "Page walks."};
  Scalar flush_requests{this, "flush_requests", "count", "TLB flush requests initiated (flush_tlb_mm_range)."};
  Scalar ipis_sent{this, "ipis_sent", "count", "Shootdown IPIs sent."};
  uint64_t inval_by_va = 0, inval_full = 0;
  CounterRef inval_by_va_stat{this, "inval_by_va", "count",
                              "TLB invalidations by VA or range executed by the CPUs inside the "
                              "region (x86 INVLPG; arm64 TLBI by VA or range, as applied to them).",
                              &inval_by_va};
  CounterRef inval_full_stat{this, "inval_full", "count",
                             "Whole-address-space TLB invalidations executed by the CPUs inside the "
                             "region (x86 CR3 write / INVPCID of a PCID; arm64 TLBI ASIDE1 / VMALLE1).",
                             &inval_full};
  std::unique_ptr<CounterRef> arch_by_va, arch_full;  // the architecture's own names
  Scalar ipi_wait_cycles{this, "ipi_wait_cycles", "cycles", "Initiator stall waiting for acks."};
  Scalar tlbis{this, "tlbis", "count", "arm64: broadcast TLBIs issued."};
  Scalar dsb_wait_cycles{this, "dsb_wait_cycles", "cycles", "arm64: DSB ISH completion waits."};
  Scalar kernel_mem_cycles{this, "kernel_mem_cycles", "cycles", "Kernel struct page / page-table line references beyond L1 (part of kernel_cycles)."};
  Scalar xlat_cycles{this, "xlat_cycles", "cycles", "User address translation beyond an L1 TLB hit."};
  Scalar data_cycles{this, "data_cycles", "cycles", "User data accesses beyond an L1 hit (before MLP overlap)."};
  Scalar local_flush_cycles{this, "local_flush_cycles", "cycles", "INVLPG / CR3 flushes executed by the CPUs inside the region."};
  Scalar lock_wait_cycles{this, "lock_wait_cycles", "cycles", "Cycles the region's tasks waited for kernel locks (system.locks has them per lock)."};
  Scalar thp_split_pmd{this, "thp_split_pmd", "count", "Kernel-wide THP_SPLIT_PMD while any CPU was inside the region."};
  Scalar thp_deferred_split_page{this, "thp_deferred_split_page", "count", "Kernel-wide PMD-sized folios queued for deferred split (THP_DEFERRED_SPLIT_PAGE) while any CPU was inside the region."};
  Scalar split_deferred{this, "split_deferred", "count", "Kernel-wide folios of any size queued for deferred split (Σ hugepages-*/stats/split_deferred) while any CPU was inside the region."};
  StatGroup ops_group{this, "kernel_ops"};
  std::array<std::unique_ptr<Scalar>, static_cast<size_t>(mm::KOp::kCount)> kernel_ops;
  Gauge free_pages_at_entry{this, "free_pages_at_entry", "pages", "Free frames when the region was first entered."};
  Gauge free_pages_at_exit{this, "free_pages_at_exit", "pages", "Free frames when the region was last left."};
  Gauge vmas_at_exit{this, "vmas_at_exit", "count", "VMAs of the leaving thread's address space when the region was last left."};
  uint64_t first_entry = ~0ull, last_exit = 0;
  unsigned active = 0;  // CPUs inside now
  uint64_t split_pmd_at_entry = 0, deferred_at_entry = 0, split_deferred_at_entry = 0;
};

class System {
 public:
  System(const MachineParams& machine, const mm::KernelProfile& profile,
         const workload::Workload& workload, uint64_t seed, StatGroup* stats_root);
  ~System();

  /// Runs the simulation to completion. Throws InputError for workload errors
  /// (segmentation faults, barriers that never complete).
  void run();

  const MachineParams& machine() const { return m_machine; }
  mm::Kernel& kernel() { return *m_kernel; }
  mm::PhysMem& phys() { return *m_pm; }
  /// The architecture the kernel runs on (x86-64 or arm64, from machine.arch).
  mm::ArchMmu& arch() { return *m_arch; }
  /// The x86 model, or nullptr on an arm64 machine.
  X86SystemMmu* x86() { return m_x86; }
  /// The arm64 model, or nullptr on an x86 machine.
  Arm64SystemMmu* arm64() { return m_arm64; }
  Core& core(unsigned i) { return *m_cores[i]; }
  unsigned nr_cpus() const { return static_cast<unsigned>(m_cores.size()); }
  const Topology& topology() const { return *m_topology; }
  CoherenceChecker* checker() { return m_checker.get(); }
  /// The timeline being recorded (tlbsim run --trace), or nullptr.
  TraceWriter* trace() { return m_trace; }
  void set_trace(TraceWriter* t);
  uint64_t next_flow_id() { return ++m_flow_id; }
  /// The data-cache hierarchy shared by user accesses, walks and kernel metadata.
  CacheHierarchy& memory() { return *m_mem; }
  uint64_t seed() const { return m_seed; }
  /// Cycles per primitive kernel operation (machine.costs).
  const std::array<uint64_t, static_cast<size_t>(mm::KOp::kCount)>& kernel_costs() const {
    return m_costs;
  }
  /// The temporal-decoupling quantum in force (machine.quantum_cycles, −1 resolved).
  uint64_t quantum_cycles() const { return m_quantum; }

  // --- tasks and the scheduler --------------------------------------------------------
  mm::Scheduler& sched() { return *m_sched; }
  LockModel& locks() { return *m_locks; }
  TaskThread& thread(unsigned pid) { return *m_threads[pid]; }
  unsigned nr_threads() const { return static_cast<unsigned>(m_threads.size()); }
  /// The first workload thread pinned to `cpu` (harness programs attach to it).
  TaskThread& thread_on(unsigned cpu);
  /// A task was queued on `cpu` at `at`: if the CPU idles, the scheduler picks it and
  /// it starts after the wake-up latency (machine.sched.wakeup_cycles).
  void kick_cpu(unsigned cpu, uint64_t at);

  // --- services for the tasks ---------------------------------------------------------
  mm::Mm& process_mm(unsigned process) { return *m_procs[process].mm; }
  /// Resolves a mapping name of a process to (start, length); throws if unmapped.
  std::pair<VirtAddr, uint64_t> mapping(unsigned process, const std::string& name,
                                        const std::string& pointer) const;
  void set_mapping(unsigned process, const std::string& name, VirtAddr start, uint64_t len);
  void drop_mapping(unsigned process, const std::string& name);
  /// Pins taken by a `pin` op on a window of a mapping (an io_uring fixed buffer, an
  /// RDMA memory region): held until a covering `unpin` or the process's exit.
  struct Pin {
    std::string mapping;
    uint64_t offset = 0, length = 0;
    std::vector<Pfn> pages;
  };
  void add_pin(unsigned process, Pin pin);
  /// Removes and returns the process's pins of `mapping` that lie inside
  /// [offset, offset + length).
  std::vector<Pin> take_pins(unsigned process, const std::string& mapping, uint64_t offset,
                             uint64_t length);
  /// Waits at barrier `name` until every participant arrived: asleep in the kernel
  /// (futex) or spinning in user mode.
  void barrier_wait(TaskThread& t, const std::string& name, bool spin);
  /// sem_post() of the workload semaphore `name`: one more unit; wakes its
  /// sleepers (each re-checks). Returns whether a task slept on it (the post then
  /// is a futex_wake system call).
  bool sem_post(TaskThread& t, const std::string& name, uint64_t count = 1);
  /// sem_wait(): until semaphore `name` is positive, asleep (futex) or spinning in
  /// user mode; then takes one unit.
  void sem_await(TaskThread& t, const std::string& name, bool spin);
  /// Declares a barrier for harness programs (workload barriers are found in the ops).
  void define_barrier(const std::string& name, unsigned participants);
  RegionStats& region(const std::string& name);
  /// fork(): `child` (from Kernel::sys_fork) becomes a new process whose one task
  /// runs `ops`, pinned to `cpu` (−1: placed by the scheduler), with a copy of the
  /// parent's mapping names. Returns the child's process number.
  unsigned spawn(mm::Mm& child, TaskThread& parent, int cpu, const std::vector<workload::Op>& ops);
  /// Sleeps (wait4) until `process` exited.
  void wait_exit(TaskThread& t, unsigned process);
  /// A task's thread failed: stop the simulation; run() rethrows the first error.
  void fail(std::exception_ptr e);
  /// do_exit() of task `t`: exit_mm, and exit_mmap when it was its process's last.
  void thread_exit(TaskThread& t);
  /// Wakes the waiters of `process` once its last task charged the exit.
  void process_exited(unsigned process);

 private:
  struct Barrier {
    unsigned expected = 0, arrived = 0;
    uint64_t generation = 0;
    std::vector<TaskThread*> sleepers;
    std::unique_ptr<sc_core::sc_event> released;
  };
  struct Semaphore {
    uint64_t count = 0;
    std::vector<TaskThread*> sleepers;
    std::unique_ptr<sc_core::sc_event> posted;
  };
  Semaphore& semaphore(const std::string& name);
  /// A user-mode spin loop until `done()`, woken by `ev`: interrupts overlap it;
  /// the tick preempts it when its slice is over and another task waits on its CPU.
  template <class Done>
  void spin_until(TaskThread& t, sc_core::sc_event& ev, Done done);
  struct Process {
    mm::Mm* mm = nullptr;
    unsigned live_threads = 0;
    bool exiting = false;  // exit_mmap ran
    bool exited = false;
    TaskThread* last = nullptr;  // the task that ran exit_mmap
    std::vector<TaskThread*> waiters;  // in wait4
    std::map<std::string, std::pair<VirtAddr, uint64_t>> mappings;
    std::vector<Pin> pins;  // FOLL_PIN | FOLL_LONGTERM pins the process holds
  };
  TaskThread& create_thread(unsigned process, int cpu, const std::string& name);
  uint64_t derive_quantum() const;
  void spin_at_barrier(TaskThread& t, Barrier& b, uint64_t generation);

  const MachineParams& m_machine;
  const mm::KernelProfile& m_profile;
  const workload::Workload& m_workload;
  uint64_t m_seed;
  StatGroup m_stats;
  std::array<uint64_t, static_cast<size_t>(mm::KOp::kCount)> m_costs;
  std::unique_ptr<mm::PhysMem> m_pm;
  std::unique_ptr<CoherenceChecker> m_checker;
  /// The kernel side of the permission check: which calls are still in progress.
  class Activity final : public KernelActivity {
   public:
    explicit Activity(System& sys) : m_sys(sys) {}
    bool call_in_flight(unsigned cpu) override;
    std::string describe(unsigned cpu) override;

   private:
    System& m_sys;
  };
  std::unique_ptr<Activity> m_activity;
  std::unique_ptr<Topology> m_topology;
  uint64_t m_quantum = 0;
  std::unique_ptr<CacheHierarchy> m_mem;
  std::unique_ptr<mm::ArchMmu> m_arch;
  X86SystemMmu* m_x86 = nullptr;
  Arm64SystemMmu* m_arm64 = nullptr;
  std::unique_ptr<mm::Kernel> m_kernel;
  std::unique_ptr<mm::Scheduler> m_sched;
  std::unique_ptr<LockModel> m_locks;
  std::vector<std::unique_ptr<Core>> m_cores;
  std::deque<Process> m_procs;  // grows at fork; references stay valid
  StatGroup m_tasks_group;
  std::vector<std::unique_ptr<TaskThread>> m_threads;  // by pid
  std::vector<TaskThread*> m_initial;                  // workload threads, in order
  std::map<std::string, Barrier> m_barriers;
  std::map<std::string, Semaphore> m_sems;
  std::exception_ptr m_error;
  TraceWriter* m_trace = nullptr;
  uint64_t m_flow_id = 0;
  StatGroup m_regions_group;
  std::map<std::string, std::unique_ptr<RegionStats>> m_regions;
};

}  // namespace tlbsim
