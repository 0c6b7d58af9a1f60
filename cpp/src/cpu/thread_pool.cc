// The worker threads behind run_on_threads. Written here rather than taken from OpenMP, on
// measurement: with an OpenMP build, importing PyTorch (which loads its own OpenMP runtime with
// global symbols) made a 2-thread softmax of a 1M row take 4.2 ms instead of 0.17 ms, and the
// two runtimes' spinning idle threads slowed each other down; this pool keeps 0.16 ms there.
#include "cpu/thread_pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#include <immintrin.h>
#define FASTSOFTMAX_PAUSE() _mm_pause()
#else
#define FASTSOFTMAX_PAUSE() std::this_thread::yield()
#endif

namespace fastsoftmax {
namespace {

// How long a waiting thread spins before it yields or sleeps: a few tens of microseconds, about
// the cost of waking a sleeping thread.
constexpr int kSpinIterations = 1 << 11;

class ThreadPool {
 public:
  void run(int count, const std::function<void(int, int)>& body) {
    start_workers(count - 1);
    body_.store(&body, std::memory_order_relaxed);
    count_.store(count, std::memory_order_relaxed);
    remaining_.store(count - 1, std::memory_order_relaxed);
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      published_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    body(0, count);
    for (int spin = 0; remaining_.load(std::memory_order_acquire) != 0; ++spin) pause_or_yield(spin);
  }

  void barrier(int count) {
    const std::uint64_t phase = barrier_phase_.load(std::memory_order_acquire);
    if (barrier_arrived_.fetch_add(1, std::memory_order_acq_rel) == count - 1) {
      barrier_arrived_.store(0, std::memory_order_relaxed);
      barrier_phase_.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int spin = 0; barrier_phase_.load(std::memory_order_acquire) == phase; ++spin) pause_or_yield(spin);
  }

 private:
  static void pause_or_yield(int spin) {
    if (spin < kSpinIterations) {
      FASTSOFTMAX_PAUSE();
    } else {
      std::this_thread::yield();
    }
  }

  void start_workers(int needed) {
    while (static_cast<int>(workers_.size()) < needed) {
      const int id = static_cast<int>(workers_.size()) + 1;
      // Jobs up to now are not the worker's: it runs the next one published (this call's).
      const std::uint64_t seen = published_.load(std::memory_order_relaxed);
      workers_.emplace_back([this, id, seen] { work(id, seen); });
    }
  }

  void work(int id, std::uint64_t seen) {
    for (;;) {
      std::uint64_t job = published_.load(std::memory_order_acquire);
      for (int spin = 0; job == seen && spin < kSpinIterations; ++spin) {
        FASTSOFTMAX_PAUSE();
        job = published_.load(std::memory_order_acquire);
      }
      if (job == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return published_.load(std::memory_order_acquire) != seen; });
        job = published_.load(std::memory_order_acquire);
      }
      seen = job;
      const int count = count_.load(std::memory_order_relaxed);
      if (id < count) {
        (*body_.load(std::memory_order_relaxed))(id, count);
        remaining_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  std::vector<std::thread> workers_;  // never joined: the pool lives as long as the process
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<std::uint64_t> published_{0};  // job counter; workers run each new job once
  // The current job, published by the release increment of published_.
  std::atomic<const std::function<void(int, int)>*> body_{nullptr};
  std::atomic<int> count_{0};
  std::atomic<int> remaining_{0};  // workers of the current job still running
  std::atomic<int> barrier_arrived_{0};
  std::atomic<std::uint64_t> barrier_phase_{0};
};

ThreadPool& pool() {
  static ThreadPool* const instance = new ThreadPool;  // never destroyed: workers may still wait
  return *instance;
}

}  // namespace

void run_on_threads(int count, const std::function<void(int, int)>& body) {
  if (count <= 1) return body(0, 1);
  pool().run(count, body);
}

void threads_barrier(int count) {
  if (count > 1) pool().barrier(count);
}

}  // namespace fastsoftmax
