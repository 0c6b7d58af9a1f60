// Threads: the default thread count, how many a call is worth, and work on the worker threads
// (thread_pool.cc), one call of the process at a time.
#include "cpu/threads.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <thread>

#include "cpu/thread_pool.h"
#include "fastsoftmax/fastsoftmax.h"
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <sched.h>
#endif

namespace fastsoftmax {
namespace {

// A thread is worth waking for at least this much input (about 10 us of work at memory speed).
constexpr std::size_t kMinBytesPerThread = std::size_t{256} << 10;
// Each slice of a split row holds at least this many elements (256 KiB of float32).
constexpr std::size_t kMinSliceElements = std::size_t{1} << 16;
// Slices start on 64-byte boundaries of the row, so threads never write the same cache line.
constexpr std::size_t kSliceAlignElements = 16;

// ---- Thread counts ----------------------------------------------------------------------------

// The first integer of a setting such as OMP_NUM_THREADS="4" or "4,2"; 0 if absent or invalid.
int positive_setting(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return 0;
  char* end = nullptr;
  const long n = std::strtol(value, &end, 10);
  return end != value && n > 0 && n <= 4096 ? static_cast<int>(n) : 0;
}

// The CPUs this process may run on (its affinity mask), else the machine's.
int available_cpus() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

// FASTSOFTMAX_NUM_THREADS, else OMP_NUM_THREADS, else the available CPUs; read once.
int automatic_threads() {
  static const int threads = [] {
    if (const int n = positive_setting("FASTSOFTMAX_NUM_THREADS")) return n;
    if (const int n = positive_setting("OMP_NUM_THREADS")) return n;
    return available_cpus();
  }();
  return threads;
}

std::atomic<int> g_default_threads{0};  // 0: automatic_threads()

// Worker threads do not survive fork(): a forked child computes on its own thread.
std::atomic<bool> g_in_forked_child{false};
#if defined(__unix__) || defined(__APPLE__)
[[maybe_unused]] const int g_fork_handler = pthread_atfork(nullptr, nullptr, [] { g_in_forked_child = true; });
#endif

// At most one call of the process uses threads at a time; the others run on their callers'
// threads, so concurrent callers never multiply the threads in use.
std::atomic<int> g_calls_using_threads{0};

class ThreadTeamLease {
 public:
  explicit ThreadTeamLease(int wanted) {
    if (wanted > 1 && g_calls_using_threads.fetch_add(1) == 0) {
      threads_ = wanted;
    } else if (wanted > 1) {
      g_calls_using_threads.fetch_sub(1);
    }
  }
  ~ThreadTeamLease() {
    if (threads_ > 1) g_calls_using_threads.fetch_sub(1);
  }
  ThreadTeamLease(const ThreadTeamLease&) = delete;
  ThreadTeamLease& operator=(const ThreadTeamLease&) = delete;
  int threads() const { return threads_; }

 private:
  int threads_ = 1;
};

// Runs of rows of about kMinBytesPerThread taken in turn from a shared counter.
void run_row_share(std::size_t rows, std::size_t row_bytes, std::atomic<std::size_t>& next_row,
                   const std::function<void(std::size_t, std::size_t)>& body) {
  const std::size_t run = std::max<std::size_t>(1, kMinBytesPerThread / (row_bytes + 1));
  for (;;) {
    const std::size_t begin = next_row.fetch_add(run, std::memory_order_relaxed);
    if (begin >= rows) return;
    body(begin, std::min(rows, begin + run));
  }
}

}  // namespace

bool split_pays(std::size_t rows, std::size_t n, std::size_t threads) {
  const bool rows_balance = rows >= 4 * threads || rows % threads == 0;
  return !rows_balance && n >= kMinSliceElements * threads;
}

Slice slice_of(std::size_t n, int thread, int count) {
  const std::size_t per_thread = (n + static_cast<std::size_t>(count) - 1) / static_cast<std::size_t>(count);
  const std::size_t step = (per_thread + kSliceAlignElements - 1) / kSliceAlignElements * kSliceAlignElements;
  const std::size_t begin = std::min(n, step * static_cast<std::size_t>(thread));
  return {begin, std::min(n, begin + step) - begin};
}

void run_team_of(std::size_t threads, const std::function<void(int, int)>& body) {
  const ThreadTeamLease lease(static_cast<int>(threads));
  run_on_threads(lease.threads(), body);
}

std::size_t useful_threads(std::size_t bytes, int requested_threads) {
  std::size_t threads = static_cast<std::size_t>(requested_threads > 0 ? requested_threads : get_num_threads());
  threads = std::min(threads, std::max<std::size_t>(1, bytes / kMinBytesPerThread));
  // The affinity mask is read (a system call) only for work that may use threads.
  if (threads > 1) threads = std::min(threads, static_cast<std::size_t>(available_cpus()));
  return g_in_forked_child ? 1 : threads;
}

void set_num_threads(int threads) { g_default_threads = threads > 0 ? threads : 0; }

int get_num_threads() {
  const int threads = g_default_threads;
  return threads > 0 ? threads : automatic_threads();
}

void share_row_runs(std::size_t rows, std::size_t row_bytes, std::size_t threads,
                    const std::function<void(std::size_t, std::size_t)>& body) {
  std::atomic<std::size_t> next_row{0};
  run_team_of(std::min(threads, rows), [&](int, int) { run_row_share(rows, row_bytes, next_row, body); });
}

}  // namespace fastsoftmax
