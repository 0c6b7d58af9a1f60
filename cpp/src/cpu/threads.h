// Internal: the CPU backend's threads: how many a call uses, and running work on them
// (threads.cc, over the worker pool of thread_pool.cc).
#pragma once

#include <cstddef>
#include <functional>

namespace fastsoftmax {

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

// Calls body(begin, end) on runs of rows that together cover [0, rows) once, on up to `threads`
// threads under the rules of run_team_of; a run holds about 256 KiB of input, `row_bytes` each row.
// Runs are taken in turn from a shared counter: a thread that starts late or runs slower (a shared
// VM, the caller back from Python) takes fewer.
void share_row_runs(std::size_t rows, std::size_t row_bytes, std::size_t threads,
                    const std::function<void(std::size_t, std::size_t)>& body);

// The same, where one thread calls body(0, rows) directly: no team, no shared counter (its atomic
// increments cost small calls a few percent), no std::function.
template <class Body>
void run_row_runs(std::size_t rows, std::size_t row_bytes, std::size_t threads, const Body& body) {
  if (threads <= 1 || rows <= 1) return body(std::size_t{0}, rows);
  share_row_runs(rows, row_bytes, threads, body);
}

}  // namespace fastsoftmax
