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

inline TlbGeometry tlb_geometry_of(const TlbParams& p, const std::string& name,
                                   const std::string& ptr, std::initializer_list<PageSize> allowed,
                                   const char* arch) {
  TlbGeometry g;
  g.name = name;
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
