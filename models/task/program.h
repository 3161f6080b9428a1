// The workload interpreter: what a workload thread's ops do, executed by its task
// (TaskThread) — user accesses through the MMU of the CPU the task runs on, system
// calls and faults into the kernel, barriers, sleeps, forks, regions.
//
// The per-access loop is a template instantiated for each CoreMmu (x86, arm64),
// dispatched once per touch op, so translation costs no virtual call. After every
// synchronisation the loop may be on another CPU (preemption, migration) and
// re-reads the MMU, the context and the stolen cycles.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/cpu/core.h"
#include "models/cpu/core_mmu.h"
#include "workloads/op.h"

namespace tlbsim {

class System;
class TaskThread;

class Program {
 public:
  explicit Program(TaskThread& t);

  /// Runs a workload thread's ops to the end (or its exit op).
  void run(const std::vector<workload::Op>& ops);
  /// One user access (harness touch()): faults enter the kernel; a segmentation
  /// fault throws.
  void touch(VirtAddr va, Access kind, const std::string& pointer);

 private:
  void exec_ops(const std::vector<workload::Op>& ops);
  void exec_op(const workload::Op& op);
  template <CoreMmu Mmu>
  void op_touch_with(const workload::Op& op);
  template <CoreMmu Mmu>
  void op_replay_with(const workload::Op& op);
  template <CoreMmu Mmu>
  void access(VirtAddr va, Access kind, const std::string& pointer);
  template <CoreMmu Mmu>
  void retry_after_fault(VirtAddr va, Access kind, const std::string& pointer);
  /// Cycles of one user access whose translation took `r` (no fault): the data
  /// reference through the cache hierarchy, with the MLP overlap of everything
  /// beyond an L1 hit. `data` collects the cycles beyond L1.
  uint64_t user_access_cycles(const XlatResult& r, uint64_t& data);
  /// A workload barrier: "block" sleeps in the kernel (futex: the CPU runs another
  /// task or idles with the mm loaded lazily), "spin" busy-waits in user mode.
  void barrier_op(const workload::Op& op);
  /// A wait of barrier or await: futex_wait (a system call that sleeps) or a
  /// user-mode spin, `wait()` the waiting itself.
  template <class Wait>
  void wait_op(const workload::Op& op, Wait wait);
  /// The mapping's length and the window's length of a syscall_on_window().
  struct Window {
    uint64_t mapping_len;
    uint64_t length;
  };
  template <class Call>
  Window syscall_on_window(const workload::Op& op, Call&& call);
  void enter_region(const std::string& name);
  void leave_region(const std::string& name);
  /// Timeline event for work that started at `start` (when tracing).
  void trace_span(const char* cat, const std::string& name, uint64_t start,
                  const std::string& args = "");

  TaskThread& m_t;
  System& m_sys;
  bool m_exiting = false;            // the thread ran an exit op
  std::vector<unsigned> m_children;  // processes this thread forked (wait4)
  std::vector<CoreSnapshot> m_region_at;  // counters at entry of each open region
  std::vector<uint64_t> m_region_now;     // entry times of open regions
};

}  // namespace tlbsim
