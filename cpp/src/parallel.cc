// Threads: the default thread count, and a call's rows on the worker threads (thread_pool.cc),
// as whole rows per thread, blocks of columns per thread, or, for few long rows, every row split
// into slices whose partial reductions are merged.
// Compiled for the baseline target; the kernels it calls are the dispatched ones.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <thread>
#include <type_traits>
#include <vector>

#include "parallel.h"
#include "thread_pool.h"
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

template <class Body>
void run_team(int threads, Body&& body) {
  run_on_threads(threads, std::function<void(int, int)>(body));
}

// ---- Whole rows per thread --------------------------------------------------------------------

template <class T>
void run_row(const RowJob<T>& job, std::size_t r, std::vector<T>& buffer) {
  const RowLayout& layout = job.layout;
  const T* x_row = job.x + static_cast<std::ptrdiff_t>(r) * layout.x_row_stride;
  T* y_row = job.y + static_cast<std::ptrdiff_t>(r) * layout.y_row_stride;
  if (layout.x_stride == 1 && layout.y_stride == 1) return job.kernel(layout.n, x_row, y_row, job.temperature);
  // Strided elements are gathered into a contiguous buffer, computed there, and scattered.
  buffer.resize(layout.n);
  for (std::size_t i = 0; i < layout.n; ++i) buffer[i] = x_row[static_cast<std::ptrdiff_t>(i) * layout.x_stride];
  job.kernel(layout.n, buffer.data(), buffer.data(), job.temperature);
  for (std::size_t i = 0; i < layout.n; ++i) y_row[static_cast<std::ptrdiff_t>(i) * layout.y_stride] = buffer[i];
}

// Runs of rows of about kMinBytesPerThread taken in turn from a shared counter: a thread that
// starts late or runs slower (a shared VM, the caller back from Python) takes fewer runs.
void run_row_share(std::size_t rows, std::size_t row_bytes, std::atomic<std::size_t>& next_row,
                   const std::function<void(std::size_t, std::size_t)>& body) {
  const std::size_t run = std::max<std::size_t>(1, kMinBytesPerThread / (row_bytes + 1));
  for (;;) {
    const std::size_t begin = next_row.fetch_add(run, std::memory_order_relaxed);
    if (begin >= rows) return;
    body(begin, std::min(rows, begin + run));
  }
}

// ---- Rows next to each other: blocks of columns ----------------------------------------------

template <class T>
bool column_layout(const RowJob<T>& job) {
  return job.column_kernel != nullptr && columns_adjacent(job.layout);
}

// Blocks [thread * blocks / count, (thread + 1) * blocks / count) of column_block rows each.
template <class T>
void run_column_share(const RowJob<T>& job, int thread, int count) {
  if constexpr (std::is_same_v<T, float>) {
    const RowLayout& layout = job.layout;
    const std::size_t blocks = (layout.rows + job.column_block - 1) / job.column_block;
    const std::size_t begin = blocks * static_cast<std::size_t>(thread) / static_cast<std::size_t>(count);
    const std::size_t end = blocks * static_cast<std::size_t>(thread + 1) / static_cast<std::size_t>(count);
    for (std::size_t b = begin; b < end; ++b) {
      const std::size_t first = b * job.column_block;
      const std::size_t cols = std::min(job.column_block, layout.rows - first);
      job.column_kernel(layout.n, cols, job.x + first, layout.x_stride, job.y + first, layout.y_stride,
                        job.temperature);
    }
  }
}

// ---- Rows split across threads (float32 SIMD kernels) -----------------------------------------

// What each thread reports about its slice. Two sets, used by alternate rows, so that a thread
// may start the next row while another still reads this row's reports.
struct SliceReport {
  RowTotal total;  // two-pass and online
  float max;       // three-pass
  double sum;      // three-pass
  char padding[64];  // one report per cache line
};

RowTotal merged_total(const SliceReport* reports, int count) {
  float exponent = -std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  for (int t = 0; t < count; ++t) {
    exponent = std::max(exponent, reports[t].total.exponent);
    max = std::max(max, reports[t].total.max);
  }
  double sum = 0;
  for (int t = 0; t < count; ++t) {
    const float shift = std::max(reports[t].total.exponent - exponent, -2000.0f);  // 2^-2000 = 0
    sum += std::ldexp(reports[t].total.sum, static_cast<int>(shift));
  }
  return {sum, exponent, max};
}

// One row, x[0, n) -> y, by every thread of the team: thread `t` of `count` owns one slice.
void run_split_row(const RowJob<float>& job, const float* x, float* y, int t, int count, SliceReport* reports) {
  const SplitRowKernels& k = *job.split;
  const std::size_t n = job.layout.n;
  const auto [begin, len] = slice_of(n, t, count);
  const float* xs = x + begin;
  float* ys = y + begin;
  SliceReport& mine = reports[t];
  const Temperature temperature = job.temperature;

  if (job.algorithm == Algorithm::kTwoPass || job.algorithm == Algorithm::kOnline) {
    mine.total = (job.algorithm == Algorithm::kTwoPass ? k.two_pass_total : k.online_total)(len, xs, temperature);
    threads_barrier(count);
    const RowTotal total = merged_total(reports, count);
    if (!fast_row_total(total.sum, total.exponent)) {
      if (t == 0) checked_row(n, x, y, job.log, temperature);
      return;
    }
    if (job.log) return k.write_log_softmax(len, xs, ys, total.sum, total.exponent, total.max, temperature);
    return k.write_softmax(len, xs, ys, total.sum, total.exponent, temperature);
  }

  // Three-pass: the maximum, then the sums below it, then the outputs.
  mine.max = k.row_max(len, xs);
  threads_barrier(count);
  float max = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < count; ++i) max = std::max(max, reports[i].max);
  if (!fast_row_max(max, temperature)) {
    if (t == 0) checked_row(n, x, y, job.log, temperature);
    return;
  }
  const float exponent = k.exponent_of(max, temperature);
  const bool reload = job.algorithm == Algorithm::kThreePassReload && !job.log;
  mine.sum = (reload ? k.sum_below_max_store : k.sum_below_max)(len, xs, ys, exponent, temperature);
  threads_barrier(count);
  double sum = 0;
  for (int i = 0; i < count; ++i) sum += reports[i].sum;
  // With a finite max every term is below 2: a non-finite sum means a NaN in the row.
  if (!std::isfinite(sum)) return fill_nan(len, ys);
  if (job.log) return k.write_log_softmax(len, xs, ys, sum, exponent, max, temperature);
  if (reload) return k.scale(len, ys, 1.0 / sum);
  k.write_softmax(len, xs, ys, sum, exponent, temperature);
}

void run_split_rows(const RowJob<float>& job, int t, int count, std::vector<SliceReport>& reports) {
  for (std::size_t r = 0; r < job.layout.rows; ++r) {
    const float* x = job.x + static_cast<std::ptrdiff_t>(r) * job.layout.x_row_stride;
    float* y = job.y + static_cast<std::ptrdiff_t>(r) * job.layout.y_row_stride;
    run_split_row(job, x, y, t, count, reports.data() + (r % 2) * static_cast<std::size_t>(count));
    // A row that took the checked path on thread 0 is done when thread 0 reaches the next row's
    // first barrier; the others may already write the next row, which is disjoint.
  }
}

// Split rows when they are few and long: whole rows per thread would leave threads idle.
template <class T>
bool split_rows(const RowJob<T>& job, std::size_t threads) {
  const RowLayout& layout = job.layout;
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    const bool splittable = job.split != nullptr && layout.x_stride == 1 && layout.y_stride == 1 && layout.n > 1;
    return splittable && split_pays(layout.rows, layout.n, threads);
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
  if (lease.threads() == 1) return body(0, 1);
  run_team(lease.threads(), body);
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

void run_row_runs(std::size_t rows, std::size_t row_bytes, int requested_threads,
                  const std::function<void(std::size_t, std::size_t)>& body) {
  const std::size_t threads = std::min(useful_threads(rows * row_bytes, requested_threads), rows);
  const ThreadTeamLease lease(static_cast<int>(threads));
  std::atomic<std::size_t> next_row{0};
  if (lease.threads() == 1) return run_row_share(rows, row_bytes, next_row, body);
  run_team(lease.threads(), [&](int, int) { run_row_share(rows, row_bytes, next_row, body); });
}

template <class T>
void run_rows(const RowJob<T>& job, int requested_threads) {
  const RowLayout& layout = job.layout;
  std::size_t threads = useful_threads(layout.rows * layout.n * sizeof(T), requested_threads);
  const bool columns = column_layout(job);
  const bool split = !columns && split_rows(job, threads);
  if (!columns && !split) {
    return run_row_runs(layout.rows, layout.n * sizeof(T), requested_threads, [&job](std::size_t begin, std::size_t end) {
      std::vector<T> buffer;
      for (std::size_t r = begin; r < end; ++r) run_row(job, r, buffer);
    });
  }
  if (columns) threads = std::min(threads, (layout.rows + job.column_block - 1) / job.column_block);

  const ThreadTeamLease lease(static_cast<int>(threads));
  if (columns) return run_team(lease.threads(), [&](int t, int count) { run_column_share(job, t, count); });
  if constexpr (std::is_same_v<T, float>) {
    if (lease.threads() > 1) {
      std::vector<SliceReport> reports(2 * static_cast<std::size_t>(lease.threads()));
      return run_team(lease.threads(), [&](int t, int count) { run_split_rows(job, t, count, reports); });
    }
  }
  // A split without a thread team (another call holds it): whole rows on this thread.
  std::vector<T> buffer;
  for (std::size_t r = 0; r < layout.rows; ++r) run_row(job, r, buffer);
}

template void run_rows<float>(const RowJob<float>&, int);
template void run_rows<double>(const RowJob<double>&, int);
template void run_rows<Float16>(const RowJob<Float16>&, int);
template void run_rows<BFloat16>(const RowJob<BFloat16>&, int);

}  // namespace fastsoftmax
