// Strong address types. A virtual address, a physical address and a page-frame
// number are different things; mixing them up is a compile error, not a bug hunt.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace tlbsim {

inline constexpr unsigned kPageShift = 12;
inline constexpr uint64_t kPageSize = uint64_t{1} << kPageShift;
inline constexpr uint64_t kPageMask = ~(kPageSize - 1);

/// TASK_SIZE, the end of the user address space, of each modelled configuration:
/// x86-64 TASK_SIZE_MAX (arch/x86/include/asm/page_64_types.h: 2^47, or 2^56 with
/// 5-level paging, less one guard page) and arm64 TASK_SIZE_64 with 4 KiB pages and
/// 48-bit VAs (arch/arm64/include/asm/processor.h: 2^48).
inline constexpr uint64_t kTaskSizeX86 = (uint64_t{1} << 47) - kPageSize;
inline constexpr uint64_t kTaskSizeX86La57 = (uint64_t{1} << 56) - kPageSize;
inline constexpr uint64_t kTaskSizeArm64 = uint64_t{1} << 48;

class Pfn;
class PhysAddr;

/// A virtual address in some address space (the space is known from context).
class VirtAddr {
 public:
  constexpr VirtAddr() = default;
  constexpr explicit VirtAddr(uint64_t v) : m_v(v) {}
  constexpr uint64_t value() const { return m_v; }
  /// Virtual page number (4 KiB units).
  constexpr uint64_t vpn() const { return m_v >> kPageShift; }
  constexpr VirtAddr page_align_down() const { return VirtAddr(m_v & kPageMask); }
  constexpr VirtAddr align_down(uint64_t size) const { return VirtAddr(m_v & ~(size - 1)); }
  constexpr VirtAddr align_up(uint64_t size) const {
    return VirtAddr((m_v + size - 1) & ~(size - 1));
  }
  constexpr bool is_aligned(uint64_t size) const { return (m_v & (size - 1)) == 0; }
  constexpr VirtAddr operator+(uint64_t d) const { return VirtAddr(m_v + d); }
  constexpr VirtAddr operator-(uint64_t d) const { return VirtAddr(m_v - d); }
  constexpr uint64_t operator-(VirtAddr o) const { return m_v - o.m_v; }
  constexpr VirtAddr& operator+=(uint64_t d) { m_v += d; return *this; }
  constexpr auto operator<=>(const VirtAddr&) const = default;

 private:
  uint64_t m_v = 0;
};

/// A physical address.
class PhysAddr {
 public:
  constexpr PhysAddr() = default;
  constexpr explicit PhysAddr(uint64_t v) : m_v(v) {}
  constexpr uint64_t value() const { return m_v; }
  constexpr Pfn pfn() const;
  constexpr PhysAddr operator+(uint64_t d) const { return PhysAddr(m_v + d); }
  constexpr auto operator<=>(const PhysAddr&) const = default;

 private:
  uint64_t m_v = 0;
};

/// A page-frame number: a physical address in 4 KiB units.
class Pfn {
 public:
  constexpr Pfn() = default;
  constexpr explicit Pfn(uint64_t v) : m_v(v) {}
  constexpr uint64_t value() const { return m_v; }
  constexpr PhysAddr addr() const { return PhysAddr(m_v << kPageShift); }
  constexpr Pfn operator+(uint64_t d) const { return Pfn(m_v + d); }
  constexpr uint64_t operator-(Pfn o) const { return m_v - o.m_v; }
  constexpr Pfn& operator++() { ++m_v; return *this; }
  constexpr auto operator<=>(const Pfn&) const = default;

 private:
  uint64_t m_v = 0;
};

constexpr Pfn PhysAddr::pfn() const { return Pfn(m_v >> kPageShift); }

}  // namespace tlbsim

template <>
struct std::hash<tlbsim::Pfn> {
  size_t operator()(tlbsim::Pfn p) const noexcept { return std::hash<uint64_t>{}(p.value()); }
};
template <>
struct std::hash<tlbsim::VirtAddr> {
  size_t operator()(tlbsim::VirtAddr a) const noexcept {
    return std::hash<uint64_t>{}(a.value());
  }
};
