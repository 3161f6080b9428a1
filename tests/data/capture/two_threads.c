// tests/cli/capture_test.sh: a worker thread writes 16 pages the main thread
// mapped, says so and goes on computing; the main thread, which polls with
// nanosleep, unmaps the pages meanwhile — the munmap must reach the worker's CPU
// (a shootdown IPI on x86), as it does natively.
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static char* buf;
static volatile int touched;

static void* worker(void* arg) {
  (void)arg;
  for (int i = 0; i < 16; i++) buf[i * 4096] = 1;
  touched = 1;
  volatile long x = 0;
  for (long i = 0; i < 300000; i++) x += i;
  return 0;
}

int main(void) {
  buf = mmap(0, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(buf, 0, 4096);
  pthread_t t;
  pthread_create(&t, 0, worker, 0);
  struct timespec ts = {0, 100000};
  while (!touched) nanosleep(&ts, 0);
  munmap(buf, 16 * 4096);
  pthread_join(t, 0);
  return 0;
}
