#include "models/system.h"

#include <algorithm>

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
      m_regions_group(&m_stats, "regions") {
  // SystemC's own informational reports (e.g. "simulation stopped by user") are not
  // for our users; warnings and errors still show.
  sc_core::sc_report_handler::set_actions(sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
  const unsigned n = machine.cpus();
  m_pm = std::make_unique<mm::PhysMem>(machine.memory().value, 18);
  if (machine.coherence_check()) {
    m_checker = std::make_unique<CoherenceChecker>(m_pm->nr_frames(), machine.coherence_fail_fast(),
                                                   &m_stats);
    m_pm->set_observer(m_checker.get());
  }
  m_topology = std::make_unique<Topology>(n, machine.topology);
  {
    std::vector<unsigned> socket_of(n);
    for (unsigned c = 0; c < n; ++c) socket_of[c] = m_topology->socket_of(c);
    m_mem = std::make_unique<CacheHierarchy>(machine.cache, socket_of);
  }
  if (machine.arch() == "arm64") {
    mm::Arm64ArchConfig cfg;
    cfg.nr_cpus = n;
    cfg.max_dvm_ops = profile.arm64_max_dvm_ops();
    cfg.range_tlbi = machine.arm64.range_tlbi();
    cfg.asid_bits = machine.arm64.asid_bits();
    cfg.contpte = profile.arm64_contpte();
    cfg.debug_no_contpte_unfold_flush = profile.debug_no_contpte_unfold_flush();
    cfg.phys = m_pm.get();
    auto a = std::make_unique<Arm64SystemMmu>(cfg, machine.arm64, *this, &m_stats);
    m_arm64 = a.get();
    m_arch = std::move(a);
  } else {
    mm::X86ArchConfig cfg;
    cfg.nr_cpus = n;
    cfg.pgtable_levels = machine.pgtable_levels();
    cfg.flush_ceiling = profile.x86_flush_ceiling();
    cfg.pcid = machine.pcid();
    cfg.flush_range_freed_tables = profile.flush_range_freed_tables();
    cfg.debug_skip_lazy_freed_tables = profile.debug_skip_lazy_freed_tables();
    auto a = std::make_unique<X86SystemMmu>(cfg, machine.x86, *this, &m_stats);
    m_x86 = a.get();
    m_arch = std::move(a);
  }
  m_kernel = std::make_unique<mm::Kernel>(profile, *m_pm, *m_arch, &m_stats);
  for (unsigned i = 0; i < n; ++i)
    m_cores.push_back(std::make_unique<Core>(("cpu" + std::to_string(i)).c_str(), i, *this, &m_stats));

  // Processes, their address spaces and thread placement.
  mm::ExecContext boot(0);
  std::vector<std::string> barrier_names;
  for (unsigned p = 0; p < workload.processes.size(); ++p) {
    Process proc;
    proc.mm = &m_kernel->mm_create(boot);
    proc.live_threads = static_cast<unsigned>(workload.processes[p].threads.size());
    m_procs.push_back(std::move(proc));
    for (const auto& t : workload.processes[p].threads) {
      m_cores[t.cpu]->assign(&t, p);
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
  sc_core::sc_start();
  if (m_error) std::rethrow_exception(m_error);
  for (auto& [name, b] : m_barriers) {
    if (b.arrived)
      throw InputError("", "barrier \"" + name + "\" never completed: " +
                               std::to_string(b.arrived) + " of " + std::to_string(b.expected) +
                               " threads arrived (a participant finished or used it fewer times)");
  }
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

void System::barrier_wait(Core& core, const std::string& name) {
  (void)core;
  Barrier& b = m_barriers.at(name);
  if (++b.arrived == b.expected) {
    b.arrived = 0;
    ++b.generation;
    b.released->notify();
    return;
  }
  const uint64_t gen = b.generation;
  while (b.generation == gen) sc_core::wait(*b.released);
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
    it = m_regions.emplace(name, std::make_unique<RegionStats>(&m_regions_group, "region[" + name + "]"))
             .first;
  return *it->second;
}

void System::thread_exit(Core& core, unsigned process) {
  Process& p = m_procs[process];
  const bool last = --p.live_threads == 0;
  // do_exit → exit_mm → mmput → exit_mmap on the last thread's CPU.
  lock_mm(core, *p.mm);
  m_kernel->do_exit(core.ctx(), *p.mm, last);
  unlock_mm(*p.mm);
  if (!last) return;
  p.mappings.clear();
  p.exiting = true;  // exited once the CPU has paid for the teardown (process_exited)
}

void System::process_exited(unsigned process) {
  Process& p = m_procs[process];
  if (!p.exiting || p.exited) return;
  p.exited = true;
  p.exit_event->notify();
}

unsigned System::spawn(mm::Mm& child, unsigned parent, unsigned cpu,
                       const std::vector<workload::Op>& ops, const std::string& pointer) {
  Core& c = core(cpu);
  if (c.busy())
    throw InputError(pointer, "fork: CPU " + std::to_string(cpu) +
                                  " is still running another thread (let it finish first)");
  Process proc;
  proc.mm = &child;
  proc.live_threads = 1;
  proc.mappings = m_procs[parent].mappings;
  m_procs.push_back(std::move(proc));
  const unsigned id = static_cast<unsigned>(m_procs.size() - 1);
  c.start(&ops, id);
  return id;
}

void System::lock_mm(Core& core, const mm::Mm& mm) {
  MmLock& l = m_mm_locks[&mm];
  if (l.held) {
    const uint64_t t = sc_now_cycles();
    while (l.held) sc_core::wait(*l.released);
    core.stats().mm_lock_wait_cycles += sc_now_cycles() - t;
  }
  l.held = true;
}

void System::unlock_mm(const mm::Mm& mm) {
  MmLock& l = m_mm_locks[&mm];
  l.held = false;
  l.released->notify();
}

void System::wait_exit(unsigned process) {
  Process& p = m_procs[process];
  while (!p.exited) sc_core::wait(*p.exit_event);
}

}  // namespace tlbsim
