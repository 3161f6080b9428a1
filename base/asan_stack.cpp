#include "base/asan_stack.h"

#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif

namespace tlbsim::asan {

#if defined(__SANITIZE_ADDRESS__)
namespace {
/// Frames above a coroutine's entry function that belong to SystemC and the
/// sc_spawn wrapper: far less than this.
constexpr uintptr_t kCoroutineMargin = 16 << 10;

[[gnu::noinline, gnu::no_sanitize_address]] void unpoison_range(uintptr_t low, uintptr_t high) {
  if (high > low) __asan_unpoison_memory_region(reinterpret_cast<void*>(low), high - low);
}
}  // namespace

/// The main thread's stack [low, low + size), or false.
bool main_stack(uintptr_t& low, size_t& size) {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return false;
  void* addr = nullptr;
  const int r = pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  low = reinterpret_cast<uintptr_t>(addr);
  return r == 0;
}

void resync_main_stack() {
  uintptr_t low = 0;
  size_t size = 0;
  if (!main_stack(low, size)) return;
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, reinterpret_cast<const void*>(low), size);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
}

[[gnu::noinline, gnu::no_sanitize_address]] void unpoison_main_stack_below_caller() {
  const auto here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  uintptr_t low = 0;
  size_t size = 0;
  if (main_stack(low, size) && here > low && here <= low + size) unpoison_range(low, here);
}

[[gnu::noinline, gnu::no_sanitize_address]] void unpoison_coroutine_stack_below_caller(
    const void* top, size_t stack_bytes) {
  const auto here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  const auto t = reinterpret_cast<uintptr_t>(top);
  if (stack_bytes <= kCoroutineMargin || here >= t) return;
  const uintptr_t low = t - stack_bytes + kCoroutineMargin;
  if (here > low) unpoison_range(low, here);
}

CoroutineStackRoots::CoroutineStackRoots(const void* top, size_t stack_bytes) {
  // The stack lies below `top` (it grows down), bounded by its size plus the margin
  // SystemC's frames take above `top`; LeakSanitizer scans only the mapped part.
  const auto t = reinterpret_cast<uintptr_t>(top);
  m_low = t > stack_bytes ? t - stack_bytes : 0;
  m_bytes = t + kCoroutineMargin - m_low;
  __lsan_register_root_region(reinterpret_cast<const void*>(m_low), m_bytes);
}

CoroutineStackRoots::~CoroutineStackRoots() {
  __lsan_unregister_root_region(reinterpret_cast<const void*>(m_low), m_bytes);
}
#else
CoroutineStackRoots::CoroutineStackRoots(const void*, size_t) {}
CoroutineStackRoots::~CoroutineStackRoots() {}
void unpoison_main_stack_below_caller() {}
void resync_main_stack() {}
void unpoison_coroutine_stack_below_caller(const void*, size_t) {}
#endif

}  // namespace tlbsim::asan
