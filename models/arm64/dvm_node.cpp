#include "models/arm64/dvm_node.h"

#include "models/system.h"

namespace tlbsim {

DvmNode::DvmNode(sc_core::sc_module_name name, System& sys)
    : sc_core::sc_module(name),
      m_sys(sys),
      m_delivery(sys.machine().arm64.tlbi_delivery_cycles()),
      m_stall(sys.machine().arm64.victim_stall_cycles()) {
  const Topology& topo = sys.topology();
  for (unsigned c = 0; c < topo.nr_cpus(); ++c) {
    const unsigned s = topo.socket_of(c);
    if (m_socket_cpus.size() <= s) m_socket_cpus.resize(s + 1);
    m_socket_cpus[s].push_back(c);
  }
  SC_METHOD(deliver);
  sensitive << m_events;
  dont_initialize();
}

uint64_t DvmNode::broadcast(unsigned from, const std::vector<mm::arm64::TlbiOp>& ops,
                            uint64_t issue) {
  auto shared = std::make_shared<const std::vector<mm::arm64::TlbiOp>>(ops);
  const Topology& topo = m_sys.topology();
  uint64_t last = issue;
  const uint64_t now = sc_now_cycles();
  for (unsigned s = 0; s < m_socket_cpus.size(); ++s) {
    const auto& cpus = m_socket_cpus[s];
    const unsigned to = cpus.front() != from ? cpus.front() : (cpus.size() > 1 ? cpus[1] : from);
    if (to == from) continue;  // no other CPU in the issuer's socket
    const uint64_t at = issue + m_delivery + topo.latency(from, to);
    auto it = m_queue.end();
    while (it != m_queue.begin() && std::prev(it)->at > at) --it;
    m_queue.insert(it, Delivery{at, from, s, shared});
    m_events.notify(cycles_to_sc(at - now));
    last = std::max(last, at);
  }
  return last;
}

void DvmNode::deliver() {
  const uint64_t t = sc_now_cycles();
  while (!m_queue.empty() && m_queue.front().at <= t) {
    const Delivery d = m_queue.front();
    m_queue.pop_front();
    for (unsigned c : m_socket_cpus[d.socket]) {
      if (c == d.from) continue;
      Core& core = m_sys.core(c);
      for (const auto& op : *d.ops) core.arm64_mmu().tlbi(op);
      if (m_stall) {
        const uint64_t stall = m_stall * d.ops->size();
        core.add_stolen(stall);
        core.stats().dvm_victim_cycles += stall;
      }
    }
  }
}

}  // namespace tlbsim
