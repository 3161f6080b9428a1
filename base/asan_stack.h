// Exceptions and ASan on SystemC's stacks. SystemC switches between its coroutine
// stacks without telling ASan, so ASan cannot find the bounds of the stack a throw
// happens on ("ASan is ignoring requested __asan_handle_no_return") — on a task's
// coroutine stack, and on the main stack too once sc_start() has run. The frames
// the exception unwinds then keep their redzones poisoned, and the next calls made
// below the catching frame report false stack-buffer-overflows. Each catch that
// can see such an exception calls one of these first thing: they unpoison the dead
// part of the stack, below the catching frame. Without ASan they do nothing.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tlbsim::asan {

/// On the main thread's stack: unpoisons from the caller's frame down to the end
/// of the stack (pthread_getattr_np).
void unpoison_main_stack_below_caller();

/// Back on the main thread's stack after sc_start(): tells ASan that this is the
/// stack it runs on (a fiber switch onto the main stack's real bounds). SystemC's
/// own fiber annotations can leave ASan with the bounds of a coroutine stack that
/// is freed by now, and LeakSanitizer's exit scan then faults on it.
void resync_main_stack();

/// On a coroutine stack of `stack_bytes` whose first frame of ours is `top`
/// (__builtin_frame_address(0) of the thread's entry function): unpoisons from the
/// caller's frame down to `top - stack_bytes` plus a margin for the frames above
/// `top` that SystemC owns.
void unpoison_coroutine_stack_below_caller(const void* top, size_t stack_bytes);

/// LeakSanitizer scans a coroutine stack for live pointers while this object lives
/// on it (__lsan_register_root_region). A run that fails stops the simulation with
/// other tasks suspended mid-call: their heap blocks are referenced only from their
/// own stacks, which LeakSanitizer does not know to scan, and were reported as leaks.
/// `top` and `stack_bytes` as for unpoison_coroutine_stack_below_caller().
class CoroutineStackRoots {
 public:
  CoroutineStackRoots(const void* top, size_t stack_bytes);
  ~CoroutineStackRoots();
  CoroutineStackRoots(const CoroutineStackRoots&) = delete;
  CoroutineStackRoots& operator=(const CoroutineStackRoots&) = delete;

 private:
  [[maybe_unused]] uintptr_t m_low = 0;
  [[maybe_unused]] size_t m_bytes = 0;
};

}  // namespace tlbsim::asan
