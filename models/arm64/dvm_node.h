// The DVM node of an arm64 interconnect: it carries broadcast TLBIs from the CPU
// that issued them to every other CPU's TLBs.
//
// Timing: a TLBI issued by CPU i at time t reaches CPU j at
//   t + tlbi_delivery_cycles + link(i, j)
// (machine.arm64, machine.topology), applied by an SC_METHOD at that time, one event
// per (broadcast, socket) since every CPU of a socket is the same distance away.
// Each CPU reached loses victim_stall_cycles per TLBI (stolen, as an interrupt).
// The issuer's own TLBs drop the entries at issue (Arm64SystemMmu::tlbi).
//
// Ordering contract: DSB ISH completes no earlier than the last delivery of the
// issuer's TLBIs (Arm64SystemMmu::dsb_ish waits for it), so the kernel frees pages
// only after every TLB dropped them.
#pragma once

#include <systemc>

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "mm/arch/arm64_tlb.h"

namespace tlbsim {

class System;

class DvmNode : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(DvmNode);
  DvmNode(sc_core::sc_module_name name, System& sys);

  /// Broadcasts `ops`, issued by `from` at `issue` (absolute cycles, ≥ now), to
  /// every other CPU. Returns when the last CPU will have applied them.
  uint64_t broadcast(unsigned from, const std::vector<mm::arm64::TlbiOp>& ops, uint64_t issue);

 private:
  struct Delivery {
    uint64_t at;
    unsigned from;
    unsigned socket;
    std::shared_ptr<const std::vector<mm::arm64::TlbiOp>> ops;
  };
  void deliver();

  System& m_sys;
  uint64_t m_delivery;
  uint64_t m_stall;
  std::vector<std::vector<unsigned>> m_socket_cpus;
  std::deque<Delivery> m_queue;  // in delivery order
  sc_core::sc_event_queue m_events;
};

}  // namespace tlbsim
