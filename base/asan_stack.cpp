#include "base/asan_stack.h"

#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#include <pthread.h>
#include <sanitizer/asan_interface.h>
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

[[gnu::noinline, gnu::no_sanitize_address]] void unpoison_main_stack_below_caller() {
  const auto here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
  void* addr = nullptr;
  size_t size = 0;
  const int r = pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  if (r != 0) return;
  const auto low = reinterpret_cast<uintptr_t>(addr);
  if (here > low && here <= low + size) unpoison_range(low, here);
}

[[gnu::noinline, gnu::no_sanitize_address]] void unpoison_coroutine_stack_below_caller(
    const void* top, size_t stack_bytes) {
  const auto here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  const auto t = reinterpret_cast<uintptr_t>(top);
  if (stack_bytes <= kCoroutineMargin || here >= t) return;
  const uintptr_t low = t - stack_bytes + kCoroutineMargin;
  if (here > low) unpoison_range(low, here);
}
#else
void unpoison_main_stack_below_caller() {}
void unpoison_coroutine_stack_below_caller(const void*, size_t) {}
#endif

}  // namespace tlbsim::asan
