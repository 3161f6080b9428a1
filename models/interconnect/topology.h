// The interconnect as a graph (Boost.Graph): CPUs attach to their socket's node,
// sockets are linked to each other. Shortest paths give the latency between any
// two CPUs, used for IPI delivery and acknowledgement.
#pragma once

#include <cstdint>
#include <vector>

#include "models/machine_params.h"

namespace tlbsim {

class Topology {
 public:
  Topology(unsigned nr_cpus, const TopologyParams& p);

  /// Link latency in cycles between two CPUs (0 for the same CPU).
  uint64_t latency(unsigned from, unsigned to) const { return m_lat[from * m_n + to]; }
  unsigned socket_of(unsigned cpu) const { return m_socket[cpu]; }
  bool same_socket(unsigned a, unsigned b) const { return m_socket[a] == m_socket[b]; }
  unsigned nr_cpus() const { return m_n; }

 private:
  unsigned m_n;
  std::vector<unsigned> m_socket;
  std::vector<uint64_t> m_lat;  // n × n
};

}  // namespace tlbsim
