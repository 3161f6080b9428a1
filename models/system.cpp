#include "models/system.h"

#include <algorithm>

#include "base/asan_stack.h"
#include "base/error.h"

namespace tlbsim {

namespace {
// Does this op list (one thread: regions included, forked children not) use barrier `name`?
bool uses_barrier(const std::vector<workload::Op>& ops, const std::string& name) {
  for (const auto& op : ops) {
    if (op.kind == workload::OpKind::kBarrier && op.name == name) return true;
    if (op.kind == workload::OpKind::kRegion && uses_barrier(op.body, name)) return true;
  }
  return false;
}
// Threads (workload threads and every forked child) that take part in barrier `name`.
unsigned barrier_participants(const std::vector<workload::Op>& ops, const std::string& name) {
  unsigned n = uses_barrier(ops, name) ? 1 : 0;
  for (const auto& op : ops) {
    if (op.kind == workload::OpKind::kFork) n += barrier_participants(op.body, name);
    if (op.kind == workload::OpKind::kRegion)
      for (const auto& inner : op.body)
        if (inner.kind == workload::OpKind::kFork) n += barrier_participants(inner.body, name);
  }
  return n;
}
void collect_barriers(const std::vector<workload::Op>& ops, std::vector<std::string>& out) {
  for (const auto& op : ops) {
    if (op.kind == workload::OpKind::kBarrier) out.push_back(op.name);
    collect_barriers(op.body, out);
  }
}
}  // namespace

System::System(const MachineParams& machine, const mm::KernelProfile& profile,
               const workload::Workload& workload, uint64_t seed, StatGroup* stats_root)
    : m_machine(machine),
      m_profile(profile),
      m_workload(workload),
      m_seed(seed),
      m_stats(stats_root, "system"),
      m_costs(machine.costs.table()),
      m_tasks_group(&m_stats, "tasks"),
      m_regions_group(&m_stats, "regions") {
  // SystemC's own informational reports (e.g. "simulation stopped by user") are not
  // for our users; warnings and errors still show.
  sc_core::sc_report_handler::set_actions(sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
  const unsigned n = machine.cpus();
  m_pm = std::make_unique<mm::PhysMem>(machine.memory().value);
  if (machine.coherence_check()) {
    m_checker = std::make_unique<CoherenceChecker>(m_pm->nr_frames(), machine.coherence_fail_fast(),
                                                   &m_stats);
    m_pm->set_observer(m_checker.get());
  }
  m_topology = std::make_unique<Topology>(n, machine.topology);
  m_quantum = machine.quantum_cycles() >= 0 ? static_cast<uint64_t>(machine.quantum_cycles())
                                            : derive_quantum();
  std::vector<unsigned> socket_of(n);
  for (unsigned c = 0; c < n; ++c) socket_of[c] = m_topology->socket_of(c);
  m_mem = std::make_unique<CacheHierarchy>(machine.cache, socket_of);
  if (machine.arch() == "arm64") {
    mm::Arm64ArchConfig cfg;
    cfg.nr_cpus = n;
    cfg.max_dvm_ops = profile.arm64_max_dvm_ops();
    cfg.range_tlbi = machine.arm64.range_tlbi();
    cfg.asid_bits = machine.arm64.asid_bits();
    cfg.contpte = profile.arm64_contpte();
    cfg.debug_no_contpte_unfold_flush = profile.debug_no_contpte_unfold_flush();
    cfg.local_flush_on_write_fault = profile.arm64_local_flush_on_write_fault();
    cfg.phys = m_pm.get();
    auto a = std::make_unique<Arm64SystemMmu>(cfg, machine.arm64, *this, &m_stats);
    m_arm64 = a.get();
    if (m_checker) m_checker->set_liveness(m_arm64);
    m_arch = std::move(a);
  } else {
    mm::X86ArchConfig cfg;
    cfg.nr_cpus = n;
    cfg.pgtable_levels = machine.pgtable_levels();
    cfg.pcid = machine.pcid();
    cfg.apply(profile);
    auto a = std::make_unique<X86SystemMmu>(cfg, machine.x86, *this, &m_stats);
    m_x86 = a.get();
    if (m_checker) m_checker->set_liveness(m_x86);
    m_arch = std::move(a);
  }
  m_kernel = std::make_unique<mm::Kernel>(profile, *m_pm, *m_arch, &m_stats);
  mm::SchedConfig sc;
  sc.nr_cpus = n;
  sc.llc_of = socket_of;
  sc.newidle_balance = machine.sched.newidle_balance();
  m_sched = std::make_unique<mm::Scheduler>(sc, *m_arch, &m_stats);
  m_locks = std::make_unique<LockModel>(*this, &m_stats);
  if (m_checker && machine.coherence_permissions()) {
    m_activity = std::make_unique<Activity>(*this);
    m_checker->enable_permissions(*m_pm, machine.arch() == "arm64" ? mm::Arch::kArm64 : mm::Arch::kX86_64,
                                  machine.pgtable_levels(), *m_activity);
  }
  for (unsigned i = 0; i < n; ++i)
    m_cores.push_back(std::make_unique<Core>(("cpu" + std::to_string(i)).c_str(), i, *this, &m_stats));

  // Processes, their address spaces and their tasks.
  mm::ExecContext boot(0);
  std::vector<std::string> barrier_names;
  for (unsigned p = 0; p < workload.processes.size(); ++p) {
    Process proc;
    proc.mm = &m_kernel->mm_create(boot);
    proc.live_threads = static_cast<unsigned>(workload.processes[p].threads.size());
    m_procs.push_back(std::move(proc));
    for (const auto& t : workload.processes[p].threads) {
      TaskThread& tt = create_thread(p, t.cpu, workload.processes[p].name + "/" + t.name);
      tt.set_ops(&t.ops);
      m_initial.push_back(&tt);
      collect_barriers(t.ops, barrier_names);
    }
  }
  for (const auto& name : barrier_names) {
    if (m_barriers.count(name)) continue;
    Barrier b;
    for (const auto& p : workload.processes)
      for (const auto& t : p.threads)
        b.expected += barrier_participants(t.ops, name);
    b.released = std::make_unique<sc_core::sc_event>();
    m_barriers.emplace(name, std::move(b));
  }
}

uint64_t System::derive_quantum() const {
  // The shortest latency through which one CPU can affect another: nothing another
  // CPU does can reach this one sooner, so running that far ahead is safe.
  uint64_t link = ~0ull;
  for (unsigned a = 0; a < m_topology->nr_cpus(); ++a)
    for (unsigned b = 0; b < m_topology->nr_cpus(); ++b)
      if (a != b) link = std::min(link, m_topology->latency(a, b));
  if (link == ~0ull) link = 0;  // one CPU
  const uint64_t base = m_machine.arch() == "arm64" ? m_machine.arm64.tlbi_delivery_cycles()
                                                    : m_machine.x86.ipi_delivery_cycles();
  return base + link;
}

TaskThread& System::create_thread(unsigned process, int cpu, const std::string& name) {
  mm::Task& task = m_sched->create_task(process, m_procs[process].mm, cpu, name);
  m_threads.push_back(std::make_unique<TaskThread>(*this, task, process, &m_tasks_group));
  TaskThread& t = *m_threads.back();
  t.spawn();
  return t;
}

bool System::Activity::call_in_flight(unsigned cpu) {
  // No user task on the CPU, or one whose CPU runs a kernel thread (lazy TLB): no
  // user access to judge. Otherwise: an rmap-wide unmap anywhere, or any task of the
  // accessing task's process (threads share its mm) inside a kernel call.
  const mm::Task& cur = m_sys.m_sched->curr(cpu);
  if (cur.is_idle || !cur.model) return true;
  const TaskThread& t = *static_cast<const TaskThread*>(cur.model);
  if (t.lazy() || m_sys.m_kernel->rmap_unmaps_in_flight()) return true;
  for (const auto& th : m_sys.m_threads)
    if (th->process() == t.process() && th->in_kernel()) return true;
  return false;
}

std::string System::Activity::describe(unsigned cpu) {
  const mm::Task& cur = m_sys.m_sched->curr(cpu);
  if (!cur.model) return "no task on cpu " + std::to_string(cpu);
  const TaskThread& t = *static_cast<const TaskThread*>(cur.model);
  std::string s = "task " + cur.name + " (pid " + std::to_string(cur.pid) + ") on cpu " +
                  std::to_string(cpu);
  if (!t.current_op().empty()) s += " at op " + t.current_op();
  s += "; last kernel call of each task of its process:";
  for (const auto& th : m_sys.m_threads) {
    if (th->process() != t.process()) continue;
    s += " " + th->task().name + ": " + (th->last_kernel_call() ? th->last_kernel_call() : "none");
  }
  return s;
}

TaskThread& System::thread_on(unsigned cpu) {
  for (TaskThread* t : m_initial)
    if (t->task().allowed_cpu == static_cast<int>(cpu)) return *t;
  throw std::logic_error("no workload thread is pinned to CPU " + std::to_string(cpu));
}

void System::kick_cpu(unsigned cpu, uint64_t at) {
  if (!m_sched->curr(cpu).is_idle || !m_sched->nr_queued(cpu)) return;
  mm::Task& next = m_sched->schedule_idle(cpu);
  static_cast<TaskThread*>(next.model)
      ->grant_cpu(*m_cores[cpu], at + m_machine.sched.wakeup_cycles(), &m_sched->idle_task(cpu));
}

System::~System() = default;

void System::set_trace(TraceWriter* t) {
  m_trace = t;
  if (t)
    for (unsigned c = 0; c < nr_cpus(); ++c) t->thread_name(c, "cpu" + std::to_string(c));
}

void System::fail(std::exception_ptr e) {
  if (!m_error) m_error = e;
  sc_core::sc_stop();
}

void System::run() {
  // The workload's threads start at time 0, placed in order (wake_up_new_task).
  for (TaskThread* t : m_initial) {
    const unsigned cpu = m_sched->wake_up_new_task(t->task());
    if (m_sched->curr(cpu).is_idle) {
      mm::Task& next = m_sched->schedule_idle(cpu);
      static_cast<TaskThread*>(next.model)->grant_cpu(*m_cores[cpu], 0, &m_sched->idle_task(cpu));
    }
  }
  sc_core::sc_start();
  asan::resync_main_stack();  // base/asan_stack.h
  if (m_error) std::rethrow_exception(m_error);
  for (auto& [name, b] : m_barriers) {
    if (b.arrived)
      throw InputError("", "barrier \"" + name + "\" never completed: " +
                               std::to_string(b.arrived) + " of " + std::to_string(b.expected) +
                               " threads arrived (a participant finished or used it fewer times)");
  }
  std::string stuck;
  for (const auto& t : m_threads)
    if (!t->exited()) stuck += " " + t->task().name;
  if (!stuck.empty())
    throw std::logic_error("the simulation ended with tasks that never finished:" + stuck + "\n" +
                           m_locks->waiters_report());
}

std::pair<VirtAddr, uint64_t> System::mapping(unsigned process, const std::string& name,
                                              const std::string& pointer) const {
  const auto& m = m_procs[process].mappings;
  auto it = m.find(name);
  if (it == m.end())
    throw InputError(pointer, "mapping \"" + name + "\" is not mapped at this point of the run "
                              "(not yet created, or already unmapped; order threads with a barrier)");
  return it->second;
}

void System::set_mapping(unsigned process, const std::string& name, VirtAddr start, uint64_t len) {
  m_procs[process].mappings[name] = {start, len};
}

void System::drop_mapping(unsigned process, const std::string& name) {
  m_procs[process].mappings.erase(name);
}

void System::barrier_wait(TaskThread& t, const std::string& name, bool spin) {
  Barrier& b = m_barriers.at(name);
  if (++b.arrived == b.expected) {
    b.arrived = 0;
    ++b.generation;
    // futex_wake(): every sleeper becomes runnable; spinners see the flag.
    for (TaskThread* w : b.sleepers) t.wake(*w);
    b.sleepers.clear();
    b.released->notify();
    return;
  }
  const uint64_t gen = b.generation;
  if (spin) {
    spin_at_barrier(t, b, gen);
  } else {
    b.sleepers.push_back(&t);
    while (b.generation == gen) t.block();
  }
}

template <class Done>
void System::spin_until(TaskThread& t, sc_core::sc_event& ev, Done done) {
  while (!done()) {
    const unsigned cpu = t.cpu_id();
    if (m_sched->nr_queued(cpu)) {
      const uint64_t left = t.slice_left();
      if (left) sc_core::wait(cycles_to_sc(left), ev);
      if (done()) break;
      t.absorb_irqs();
      t.maybe_preempt();
    } else {
      sc_core::wait(ev);
    }
  }
  t.absorb_irqs();
}

void System::spin_at_barrier(TaskThread& t, Barrier& b, uint64_t generation) {
  spin_until(t, *b.released, [&] { return b.generation != generation; });
}

System::Semaphore& System::semaphore(const std::string& name) {
  Semaphore& s = m_sems[name];
  if (!s.posted) s.posted = std::make_unique<sc_core::sc_event>();
  return s;
}

bool System::sem_post(TaskThread& t, const std::string& name, uint64_t count) {
  Semaphore& s = semaphore(name);
  s.count += count;
  const bool slept = !s.sleepers.empty();
  std::vector<TaskThread*> wake;
  wake.swap(s.sleepers);
  for (TaskThread* w : wake) t.wake(*w);
  s.posted->notify();
  return slept;
}

void System::sem_await(TaskThread& t, const std::string& name, bool spin) {
  Semaphore& s = semaphore(name);
  if (spin) {
    spin_until(t, *s.posted, [&] { return s.count > 0; });
  } else {
    while (s.count == 0) {
      s.sleepers.push_back(&t);
      t.block();
    }
  }
  --s.count;
}

void System::define_barrier(const std::string& name, unsigned participants) {
  Barrier b;
  b.expected = participants;
  b.released = std::make_unique<sc_core::sc_event>();
  m_barriers[name] = std::move(b);
}

RegionStats& System::region(const std::string& name) {
  auto it = m_regions.find(name);
  if (it == m_regions.end())
    it = m_regions.emplace(name, std::make_unique<RegionStats>(&m_regions_group, "region[" + name + "]",
                                                       m_machine.arch() == "arm64"))
             .first;
  return *it->second;
}

void System::add_pin(unsigned process, Pin pin) { m_procs[process].pins.push_back(std::move(pin)); }

std::vector<System::Pin> System::take_pins(unsigned process, const std::string& mapping,
                                           uint64_t offset, uint64_t length) {
  auto& pins = m_procs[process].pins;
  std::vector<Pin> out;
  auto keep = pins.begin();
  for (auto it = pins.begin(); it != pins.end(); ++it) {
    if (it->mapping == mapping && it->offset >= offset && it->offset + it->length <= offset + length)
      out.push_back(std::move(*it));
    else
      *keep++ = std::move(*it);
  }
  pins.erase(keep, pins.end());
  return out;
}

void System::thread_exit(TaskThread& t) {
  Process& p = m_procs[t.process()];
  const bool last = --p.live_threads == 0;
  // do_exit → exit_mm → mmput → exit_mmap on the last thread's CPU.
  m_kernel->do_exit(t.ctx(), *p.mm, last);
  m_sched->exit_mm(t.task());
  if (!last) return;
  // exit_files() after exit_mm(): the io_uring ring (or RDMA context) goes with the
  // last file reference and unpins its buffers; the frames are freed here, after
  // exit_mmap removed their mappings.
  for (const Pin& pin : p.pins) m_kernel->unpin_user_pages(t.ctx(), pin.pages);
  p.pins.clear();
  p.mappings.clear();
  p.exiting = true;  // exited once the task has paid for the teardown (process_exited)
  p.last = &t;
}

void System::process_exited(unsigned process) {
  Process& p = m_procs[process];
  if (!p.exiting || p.exited) return;
  p.exited = true;
  for (TaskThread* w : p.waiters) p.last->wake(*w);
  p.waiters.clear();
}

unsigned System::spawn(mm::Mm& child, TaskThread& parent, int cpu,
                       const std::vector<workload::Op>& ops) {
  Process proc;
  proc.mm = &child;
  proc.live_threads = 1;
  proc.mappings = m_procs[parent.process()].mappings;
  m_procs.push_back(std::move(proc));
  const unsigned id = static_cast<unsigned>(m_procs.size() - 1);
  TaskThread& t = create_thread(id, cpu, parent.task().name + "/child" + std::to_string(id));
  t.set_ops(&ops);
  // wake_up_new_task(): the child is queued where the scheduler places it.
  const unsigned on = m_sched->wake_up_new_task(t.task());
  kick_cpu(on, parent.now());
  return id;
}

void System::wait_exit(TaskThread& t, unsigned process) {
  Process& p = m_procs[process];
  while (!p.exited) {
    p.waiters.push_back(&t);
    t.block();
  }
}

}  // namespace tlbsim
