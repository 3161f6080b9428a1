#include "models/interconnect/topology.h"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/dijkstra_shortest_paths.hpp>

namespace tlbsim {

Topology::Topology(unsigned nr_cpus, const TopologyParams& p) : m_n(nr_cpus), m_socket(nr_cpus) {
  using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS,
                                      boost::no_property,
                                      boost::property<boost::edge_weight_t, uint64_t>>;
  const unsigned sockets = p.sockets();
  Graph g(nr_cpus + sockets);
  const unsigned per_socket = (nr_cpus + sockets - 1) / sockets;
  for (unsigned c = 0; c < nr_cpus; ++c) {
    m_socket[c] = c / per_socket;
    boost::add_edge(c, nr_cpus + m_socket[c], uint64_t{p.core_link_cycles()}, g);
  }
  for (unsigned a = 0; a < sockets; ++a)
    for (unsigned b = a + 1; b < sockets; ++b)
      boost::add_edge(nr_cpus + a, nr_cpus + b, uint64_t{p.socket_link_cycles()}, g);
  m_lat.assign(static_cast<size_t>(nr_cpus) * nr_cpus, 0);
  std::vector<uint64_t> dist(boost::num_vertices(g));
  for (unsigned c = 0; c < nr_cpus; ++c) {
    boost::dijkstra_shortest_paths(g, c, boost::distance_map(dist.data()));
    for (unsigned d = 0; d < nr_cpus; ++d) m_lat[static_cast<size_t>(c) * nr_cpus + d] = c == d ? 0 : dist[d];
  }
}

}  // namespace tlbsim
