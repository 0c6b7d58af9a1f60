// Internal: how many threads a call uses, and running a call's rows on them (parallel.cc).
#pragma once

#include <functional>

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
  Temperature temperature;
  RowKernel<T> kernel;
  const SplitRowKernels* split;
  // For rows that lie next to each other (row stride 1, elements strided): the ISA's column
  // kernel for this algorithm, run on blocks of column_block rows; null: gather row by row.
  ColumnKernel column_kernel;
  std::size_t column_block;
};

// Rows next to each other with strided elements (a softmax along a non-contiguous axis): run
// as blocks of columns by the ISA's column kernels where it has them.
inline bool columns_adjacent(const RowLayout& layout) {
  return layout.rows > 1 && layout.n > 1 && layout.x_row_stride == 1 && layout.y_row_stride == 1 &&
         layout.x_stride != 1;
}

// Runs every row of the job on up to `requested_threads` threads (0: get_num_threads()). Work too
// small to pay for waking threads stays on the calling thread; so does every call made while
// another call of this process is using threads, and every call in a forked child.
template <class T>
void run_rows(const RowJob<T>& job, int requested_threads);

// ---- For callers that split rows themselves (softmax_topk) ----

// The threads worth using for `bytes` of input: the request (0: get_num_threads()), at most one
// per 256 KiB and per available CPU; one in a forked child.
std::size_t useful_threads(std::size_t bytes, int requested_threads);
// Whether `rows` rows of n elements are better split across `threads` threads than shared out
// whole: too few rows to balance, and slices of at least 64K elements.
bool split_pays(std::size_t rows, std::size_t n, std::size_t threads);
// Thread `thread` of `count`'s part of a row of n elements: slices start on 64-byte boundaries
// of the row, so threads never write the same cache line.
struct Slice {
  std::size_t begin, length;
};
Slice slice_of(std::size_t n, int thread, int count);
// Runs body(thread, count) on `threads` threads (threads_barrier() syncs them), or on the
// calling thread alone (count 1) while another call of the process holds the team.
void run_team_of(std::size_t threads, const std::function<void(int, int)>& body);

// Calls body(begin, end) on runs of rows that together cover [0, rows) once, on up to
// `requested_threads` threads (0: get_num_threads()) under the same rules as run_rows; a run
// holds about 256 KiB of input, `row_bytes` each row.
void run_row_runs(std::size_t rows, std::size_t row_bytes, int requested_threads,
                  const std::function<void(std::size_t, std::size_t)>& body);

}  // namespace fastsoftmax
