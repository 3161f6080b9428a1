// Builds a TlbGeometry from a machine preset's TlbParams, validating the page sizes
// against the architecture (errors name the JSON pointer).
#pragma once

#include <initializer_list>
#include <sstream>
#include <string>

#include "base/error.h"
#include "models/machine_params.h"
#include "models/tlb/tlb.h"

namespace tlbsim {

/// The seed of one TLB's "random" replacement: the experiment's seed mixed with the
/// CPU and the TLB's place (splitmix64 finaliser), so every TLB draws its own stream
/// and another experiment seed gives other streams. Never 0 (xorshift64).
inline uint64_t tlb_seed(uint64_t experiment_seed, unsigned cpu, unsigned which) {
  uint64_t z = experiment_seed + 0x9e3779b97f4a7c15ull * (1 + (uint64_t{cpu} << 4 | which));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return z ? z : 1;
}

inline TlbGeometry tlb_geometry_of(const TlbParams& p, const std::string& name,
                                   const std::string& ptr, std::initializer_list<PageSize> allowed,
                                   const char* arch, uint64_t seed) {
  TlbGeometry g;
  g.name = name;
  g.seed = seed;
  g.entries = p.entries();
  g.ways = p.ways();
  g.hit_latency_cycles = p.hit_latency_cycles();
  g.repl = *parse_replacement(p.replacement());
  g.sizes.clear();
  std::stringstream ss(p.sizes());
  std::string item;
  std::string names;
  for (PageSize a : allowed) names += (names.empty() ? "" : ", ") + std::string(page_size_name(a));
  while (std::getline(ss, item, ',')) {
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    auto s = parse_page_size(item);
    bool ok = false;
    for (PageSize a : allowed) ok |= s && *s == a;
    if (!ok)
      throw InputError(ptr + "/sizes", std::string("expected ") + arch + " page sizes among " +
                                           names + ", got \"" + item + "\"");
    g.sizes.push_back(*s);
  }
  if (g.ways == 0 || g.entries % g.ways != 0)
    throw InputError(ptr + "/ways", "expected ways dividing entries (" + std::to_string(g.entries) +
                                        "), got " + std::to_string(g.ways));
  return g;
}

}  // namespace tlbsim
