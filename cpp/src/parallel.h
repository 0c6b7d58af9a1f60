// Internal: how many threads a call uses, and running a call's rows on them (parallel.cc).
#pragma once

#include "kernels.h"

namespace fastsoftmax {

// Everything a call needs to process its rows: the layout, the resolved algorithm, the row
// kernel for it, and the ISA's split-row passes (null: rows are never split).
template <class T>
struct RowJob {
  const T* x;
  T* y;
  RowLayout layout;
  Algorithm algorithm;  // resolved, not kAuto
  bool log;
  RowKernel<T> kernel;
  const SplitRowKernels* split;
};

// Runs every row of the job on up to `requested_threads` threads (0: get_num_threads()). Work too
// small to pay for waking threads stays on the calling thread; so does every call made while
// another call of this process is using threads, and every call in a forked child.
template <class T>
void run_rows(const RowJob<T>& job, int requested_threads);

}  // namespace fastsoftmax
