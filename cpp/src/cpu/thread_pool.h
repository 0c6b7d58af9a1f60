// Internal: the process's worker threads (thread_pool.cc).
#pragma once

#include <functional>

namespace fastsoftmax {

// Runs body(thread, count) on `count` threads, the calling thread being thread 0, and returns
// when all are done. Workers are started on first use and kept; between jobs they spin briefly
// (back-to-back calls) and then sleep, so an idle process holds no busy CPU. One job at a time:
// callers serialize (parallel.cc lets one call at a time use threads).
void run_on_threads(int count, const std::function<void(int, int)>& body);

// Inside a job: returns when all `count` threads of the job have called it.
void threads_barrier(int count);

}  // namespace fastsoftmax
