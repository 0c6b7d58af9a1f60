// The CPU backend's execution of a planned call, one generic shape for every operation:
// reduce each slice of a row to a Normalizer state -> merge the states in a fixed order ->
// check the merged state (the checked path takes the rows the fast path declines) -> write.
// A whole row is one slice, and its row kernel fuses the three steps; split rows, column blocks
// and top-k run them step by step. Strided rows are gathered contiguous by one helper, and every
// declined row, column or top-k row goes through checked_row.
// Compiled for the baseline target; the kernels it calls are those the plan chose.
#include "cpu/execute.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "cpu/checked.h"
#include "cpu/targets.h"
#include "cpu/normalizer.h"
#include "cpu/router.h"
#include "cpu/sampler.h"
#include "cpu/thread_pool.h"
#include "cpu/threads.h"
#include "cpu/topk_selection.h"
#include "kernels/half.h"
#include "kernels/rules.h"

namespace fastsoftmax {
namespace {

// Row r of an operand, as T.
template <class T>
T* row_of(const Operand& operand, std::size_t r) {
  return static_cast<T*>(const_cast<void*>(operand.data)) + static_cast<std::ptrdiff_t>(r) * operand.row_stride;
}

// Copies n elements `stride` apart into `row` (contiguous), and back.
template <class T>
T* gather(std::size_t n, const T* x, std::ptrdiff_t stride, std::vector<T>& row) {
  row.resize(n);
  for (std::size_t i = 0; i < n; ++i) row[i] = x[static_cast<std::ptrdiff_t>(i) * stride];
  return row.data();
}
template <class T>
void scatter(std::size_t n, const T* row, T* y, std::ptrdiff_t stride) {
  for (std::size_t i = 0; i < n; ++i) y[static_cast<std::ptrdiff_t>(i) * stride] = row[i];
}

// ---- softmax and log_softmax: whole rows ---------------------------------------------------

// What a row kernel left undone: the checked path for a declined row, NaN for a NaN row.
template <class T>
void complete_row(RowOutcome outcome, std::size_t n, const T* x, T* y, bool log, Temperature t) {
  if (outcome == RowOutcome::kDeclined) checked_row(n, x, y, log, t);
  if (outcome == RowOutcome::kNan) fill_nan(n, y);
}

// The kernel of one-element rows: the checked path, which gives exactly 1 (log: 0) or NaN.
template <class T>
std::size_t one_element(const RowBatch<T>&, Temperature, RowOutcome* stopped) {
  *stopped = RowOutcome::kDeclined;
  return 0;
}

// The rows of a call and what computes them; the row runs capture only a reference to it (so
// a std::function holding them, for a team of threads, needs no allocation).
template <class T>
struct RowsJob {
  const Call& call;
  RowKernel<T> kernel;
  bool log;
  Temperature t;

  void run(std::size_t begin, std::size_t end) const {
    const Operand& x = call.inputs[0];
    const Operand& y = call.outputs[0];
    const std::size_t n = call.n;
    RowOutcome stopped;
    if (x.stride == 1 && y.stride == 1) {
      // The kernel runs the rows until one it does not write, which is completed here.
      for (std::size_t r = begin; r < end;) {
        const RowBatch<T> batch{end - r, n, row_of<const T>(x, r), x.row_stride, row_of<T>(y, r), y.row_stride};
        r += kernel(batch, t, &stopped);
        if (r == end) break;
        complete_row(stopped, n, row_of<const T>(x, r), row_of<T>(y, r), log, t);
        ++r;
      }
      return;
    }
    std::vector<T> gathered;  // a strided row, copied contiguous
    for (std::size_t r = begin; r < end; ++r) {
      T* row = gather(n, row_of<const T>(x, r), x.stride, gathered);
      if (kernel({1, n, row, 0, row, 0}, t, &stopped) == 0) complete_row(stopped, n, row, row, log, t);
      scatter(n, row, row_of<T>(y, r), y.stride);
    }
  }
};

template <class T>
void run_rows(const Call& call, const Plan& plan, RowKernel<T> kernel, bool log) {
  const RowsJob<T> job{call, kernel, log, plan.temperature};
  run_row_runs(call.rows, call.n * sizeof(T), plan.threads,
               [&job](std::size_t begin, std::size_t end) { job.run(begin, end); });
}

// ---- softmax and log_softmax: rows split across threads (float32) ---------------------------

// What each thread reports about its slice. Two sets, used by alternate rows, so that a thread
// may start the next row while another still reads this row's reports.
struct SliceReport {
  Normalizer<float> state;  // two-pass and online; three-pass: its sum below the row maximum
  float max;                // three-pass
  char padding[64];         // one report per cache line
};

bool pair_algorithm(Algorithm algorithm) {
  return algorithm == Algorithm::kTwoPass || algorithm == Algorithm::kOnline;
}

// One row, x[0, n) -> y, by every thread of the team: thread `t` of `count` owns one slice.
// (count = 1, when another call holds the team: the whole row, with the same results as its row
// kernel.)
void split_row(const Call& call, const Plan& plan, const SlicePasses& k, const float* x, float* y, int thread,
               int count, SliceReport* reports) {
  const std::size_t n = call.n;
  const bool log = call.operation == Operation::kLogSoftmax;
  const Temperature t = plan.temperature;
  const auto [begin, len] = slice_of(n, thread, count);
  const float* xs = x + begin;
  float* ys = y + begin;
  SliceReport& mine = reports[thread];
  const auto state_of = [reports](int i) -> const Normalizer<float>& { return reports[i].state; };

  if (pair_algorithm(plan.algorithm)) {
    mine.state = (plan.algorithm == Algorithm::kTwoPass ? k.two_pass_total : k.online_total)(len, xs, t);
    threads_barrier(count);
    const Normalizer<float> total = merge_normalizers<float>(count, t, state_of);
    if (!fast_normalizer(total)) {
      if (thread == 0) checked_row(n, x, y, log, t);
      return;
    }
    return (log ? k.write_log_softmax : k.write_softmax)(len, xs, ys, total, t);
  }

  // Three-pass: the maximum, then the sums below it, then the outputs.
  mine.max = k.max(len, xs);
  threads_barrier(count);
  float max = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < count; ++i) max = std::max(max, reports[i].max);
  if (!fast_row_max(max, t)) {
    if (thread == 0) checked_row(n, x, y, log, t);
    return;
  }
  const float exponent = k.exponent_of(max, t);
  const bool reload = plan.algorithm == Algorithm::kThreePassReload;
  mine.state = {(reload ? k.sum_below_max_store : k.sum_below_max)(len, xs, ys, exponent, t), exponent, 0.0f, max};
  threads_barrier(count);
  const Normalizer<float> total = merge_normalizers<float>(count, t, state_of);
  // With a finite max every term is below 2: a non-finite sum means a NaN in the row.
  if (!std::isfinite(total.sum)) return fill_nan(len, ys);
  if (reload) return k.scale(len, ys, 1.0 / total.sum);
  (log ? k.write_log_softmax : k.write_softmax)(len, xs, ys, total, t);
}

void run_split_rows(const Call& call, const Plan& plan, const SlicePasses& passes) {
  std::vector<SliceReport> reports(2 * plan.threads);
  run_team_of(plan.threads, [&](int thread, int count) {
    for (std::size_t r = 0; r < call.rows; ++r) {
      split_row(call, plan, passes, row_of<const float>(call.inputs[0], r), row_of<float>(call.outputs[0], r), thread,
                count, reports.data() + (r % 2) * plan.threads);
      // A row that took the checked path on thread 0 is done when thread 0 reaches the next row's
      // first barrier; the others may already write the next row, which is disjoint.
    }
  });
}

// ---- softmax and log_softmax: blocks of adjacent columns (float32) --------------------------

// The columns of a block the fast path declines: each gathered (before anything of the block is
// written, so in-place calls work), computed by the checked path, and scattered over what the
// block's output pass wrote there.
class CheckedColumns {
 public:
  void clear() { columns_.clear(); }
  void add(const ColumnBlock& b, std::size_t c, bool log, Temperature t) {
    columns_.push_back(c);
    values_.resize(columns_.size() * b.n);
    float* column = values_.data() + (columns_.size() - 1) * b.n;
    std::copy_n(gather(b.n, b.x + c, b.x_stride, gathered_), b.n, column);
    checked_row(b.n, column, column, log, t);
  }
  void add_nan(const ColumnBlock& b, std::size_t c) {
    columns_.push_back(c);
    values_.resize(columns_.size() * b.n);
    fill_nan(b.n, values_.data() + (columns_.size() - 1) * b.n);
  }
  void scatter_into(const ColumnBlock& b) const {
    for (std::size_t i = 0; i < columns_.size(); ++i) scatter(b.n, values_.data() + i * b.n, b.y + columns_[i], b.y_stride);
  }

 private:
  std::vector<std::size_t> columns_;
  std::vector<float> values_;  // n per column
  std::vector<float> gathered_;
};

void column_block(const ColumnPasses& k, Algorithm algorithm, bool log, const ColumnBlock& b, Temperature t,
                  CheckedColumns& checked) {
  ColumnTotals totals;
  checked.clear();
  const bool reload = algorithm == Algorithm::kThreePassReload;
  if (pair_algorithm(algorithm)) {
    (algorithm == Algorithm::kTwoPass ? k.two_pass_totals : k.online_totals)(b, t, &totals);
    for (std::size_t c = 0; c < b.columns; ++c) {
      if (!fast_normalizer(Normalizer<float>{totals.sum[c], totals.exponent[c], 0.0f, totals.max[c]})) {
        checked.add(b, c, log, t);
      }
    }
  } else {
    k.max(b, &totals);
    for (std::size_t c = 0; c < b.columns; ++c) {
      if (!fast_row_max(totals.max[c], t)) checked.add(b, c, log, t);
    }
    (reload ? k.sums_below_max_store : k.sums_below_max)(b, t, &totals);
    // A finite maximum and a non-finite sum: a NaN in the column, which gives NaN.
    for (std::size_t c = 0; c < b.columns; ++c) {
      if (!std::isfinite(totals.sum[c]) && fast_row_max(totals.max[c], t)) checked.add_nan(b, c);
    }
  }
  if (log) {
    k.write_log_softmax(b, t, totals);
  } else if (reload) {
    k.scale(b, totals);
  } else {
    k.write_softmax(b, t, totals);
  }
  checked.scatter_into(b);
}

// Each thread takes blocks [thread * blocks / count, (thread + 1) * blocks / count).
void run_columns(const Call& call, const Plan& plan, const ColumnPasses& passes) {
  const Operand& x = call.inputs[0];
  const Operand& y = call.outputs[0];
  const bool log = call.operation == Operation::kLogSoftmax;
  const std::size_t width = passes.block_columns;
  const std::size_t blocks = (call.rows + width - 1) / width;
  run_team_of(plan.threads, [&](int thread, int count) {
    CheckedColumns checked;
    const std::size_t first = blocks * static_cast<std::size_t>(thread) / static_cast<std::size_t>(count);
    const std::size_t last = blocks * static_cast<std::size_t>(thread + 1) / static_cast<std::size_t>(count);
    for (std::size_t b = first; b < last; ++b) {
      const std::size_t column = b * width;
      const ColumnBlock block{call.n,          std::min(width, call.rows - column), row_of<const float>(x, column),
                              x.stride,        row_of<float>(y, column),             y.stride};
      column_block(passes, plan.algorithm, log, block, plan.temperature, checked);
    }
  });
}

// ---- softmax and log_softmax: short rows, transposed into column blocks (float32) -----------

// Rows too short for a row kernel to pay for its per-row set-up, horizontal sums and division:
// each run of block_columns rows is transposed into a column block (one row per SIMD lane), run
// by the column passes, and transposed back. The block is read whole before anything is written,
// so x may be y.
void run_short_rows(const Call& call, const Plan& plan, const ColumnPasses& passes) {
  const Operand& x = call.inputs[0];
  const Operand& y = call.outputs[0];
  const bool log = call.operation == Operation::kLogSoftmax;
  const std::size_t n = call.n;
  const std::size_t width = passes.block_columns;
  const std::size_t blocks = (call.rows + width - 1) / width;
  run_team_of(plan.threads, [&](int thread, int count) {
    CheckedColumns checked;
    std::vector<float> in(n * width), out(n * width);
    const auto stride = static_cast<std::ptrdiff_t>(width);
    const std::size_t first = blocks * static_cast<std::size_t>(thread) / static_cast<std::size_t>(count);
    const std::size_t last = blocks * static_cast<std::size_t>(thread + 1) / static_cast<std::size_t>(count);
    for (std::size_t b = first; b < last; ++b) {
      const std::size_t row = b * width;
      const std::size_t rows = std::min(width, call.rows - row);
      passes.rows_to_block(rows, n, row_of<const float>(x, row), x.row_stride, in.data());
      column_block(passes, plan.algorithm, log, {n, width, in.data(), stride, out.data(), stride}, plan.temperature,
                   checked);
      passes.block_to_rows(rows, n, out.data(), row_of<float>(y, row), y.row_stride);
    }
  });
}

// ---- Masks ----------------------------------------------------------------------------------

// Row r's mask bytes (null: no mask), contiguous.
const std::uint8_t* mask_row(const Call& call, std::size_t r, std::vector<std::uint8_t>& gathered) {
  const Operand& mask = call.mask;
  if (mask.data == nullptr) return nullptr;
  const std::uint8_t* row = row_of<const std::uint8_t>(mask, r);
  return mask.stride == 1 ? row : gather(call.n, row, mask.stride, gathered);
}

// The entries a mask keeps (its nonzero bytes), eight bytes at a time: the high bit of each zero
// byte of a word, summed by one multiply (a byte-by-byte count cost masked states 2x).
std::size_t count_taking_part(std::size_t n, const std::uint8_t* mask) {
  if (mask == nullptr) return n;
  constexpr std::uint64_t kLow7 = 0x7f7f7f7f7f7f7f7f, kOnes = 0x0101010101010101;
  std::size_t zeros = 0, i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, mask + i, sizeof word);
    const std::uint64_t zero_bytes = ~(((word & kLow7) + kLow7) | word | kLow7);  // 0x80 where a byte is 0
    zeros += static_cast<std::size_t>(((zero_bytes >> 7) * kOnes) >> 56);
  }
  for (; i < n; ++i) zeros += mask[i] == 0;
  return n - zeros;
}

// A row's elements `stride` apart copied into `row` with the masked ones as -inf (softmax_topk's
// masked rows: they then rank after every finite entry and get probability 0).
template <class T>
T* masked_copy(std::size_t n, const T* x, std::ptrdiff_t stride, const std::uint8_t* mask, std::vector<T>& row) {
  const T masked = narrow<T>(-std::numeric_limits<double>::infinity());
  row.resize(n);
  for (std::size_t i = 0; i < n; ++i) row[i] = mask[i] != 0 ? x[static_cast<std::ptrdiff_t>(i) * stride] : masked;
  return row.data();
}

// ---- softmax_topk ----------------------------------------------------------------------------

// Where one row's k results go.
template <class T>
struct TopkOut {
  T* values;
  std::int64_t* indices;
  std::ptrdiff_t values_stride, indices_stride;

  void set(std::size_t j, T value, std::int64_t index) const {
    values[static_cast<std::ptrdiff_t>(j) * values_stride] = value;
    indices[static_cast<std::ptrdiff_t>(j) * indices_stride] = index;
  }
};
template <class T>
TopkOut<T> topk_out(const Call& call, std::size_t r) {
  const Operand& values = call.outputs[0];
  const Operand& indices = call.outputs[1];
  return {row_of<T>(values, r), row_of<std::int64_t>(indices, r), values.stride, indices.stride};
}

// A thread's state for top-k rows: its selector, and room for a gathered row and checked results.
template <class T>
struct TopkScratch {
  explicit TopkScratch(std::size_t k) : selector(k) {}
  TopkSelector<ComputeOf<T>> selector;
  std::vector<T> gathered;
  std::vector<T> checked;
};

// The results of a row whose candidates the selector holds and whose normalizer is `total`:
// probabilities exp((x - shift) / t) / (sum * 2^exponent), computed in the wide type.
template <class T>
void write_topk(const Call& call, std::size_t n, const T* x, TopkSelector<ComputeOf<T>>& selector,
                const Normalizer<ComputeOf<T>>& total, Temperature t, const TopkOut<T>& out) {
  using Wide = WideOf<T>;
  constexpr Wide kLn2 = 0.693147180559945309417232121458176568L;
  const auto* best = selector.finish(n, x, call.sorted);
  const Wide log_scale = static_cast<Wide>(total.exponent) * kLn2;
  for (std::size_t j = 0; j < static_cast<std::size_t>(call.k); ++j) {
    const Wide scaled = (static_cast<Wide>(best[j].value) - total.shift) / static_cast<Wide>(t.value);
    out.set(j, narrow<T>(std::exp(scaled - log_scale) / total.sum), best[j].index);
  }
}

// Rows the fast path declines, and one-element rows: a row with a NaN gives NaN at indices
// 0..k-1; otherwise the k best inputs are selected and their probabilities are checked_row's.
template <class T>
void checked_topk(const Call& call, std::size_t n, const T* x, Temperature t, TopkScratch<T>& scratch,
                  const TopkOut<T>& out) {
  const T nan = narrow<T>(std::numeric_limits<double>::quiet_NaN());
  if (std::any_of(x, x + n, [](T v) { return std::isnan(widen(v)); })) {
    for (std::size_t j = 0; j < static_cast<std::size_t>(call.k); ++j) out.set(j, nan, static_cast<std::int64_t>(j));
    return;
  }
  TopkSelector<ComputeOf<T>>& selector = scratch.selector;
  selector.clear();
  for (std::size_t i = 0; i < n; ++i) {
    const ComputeOf<T> v = widen(x[i]);
    if (v > selector.candidates()->threshold) selector.offer(v, static_cast<std::int64_t>(i));
  }
  const auto* best = selector.finish(n, x, call.sorted);
  scratch.checked.resize(n);
  checked_row(n, x, scratch.checked.data(), false, t);
  for (std::size_t j = 0; j < static_cast<std::size_t>(call.k); ++j) {
    out.set(j, scratch.checked[static_cast<std::size_t>(best[j].index)], best[j].index);
  }
}

// One contiguous row (kernel null: a one-element row, for the checked path).
template <class T>
void topk_row(const Call& call, TopkKernel<T> kernel, std::size_t n, const T* x, Temperature t,
              TopkScratch<T>& scratch, const TopkOut<T>& out) {
  if (kernel == nullptr) return checked_topk(call, n, x, t, scratch, out);
  scratch.selector.clear();
  const Normalizer<ComputeOf<T>> total = reduce_topk(kernel, n, x, 0, t, scratch.selector);
  if (!fast_normalizer(total)) return checked_topk(call, n, x, t, scratch, out);
  write_topk(call, n, x, scratch.selector, total, t, out);
}

template <class T>
struct TopkRowsJob {
  const Call& call;
  TopkKernel<T> kernel;  // null: one-element rows
  Temperature t;

  void run(std::size_t begin, std::size_t end) const {
    const Operand& x = call.inputs[0];
    TopkScratch<T> scratch(static_cast<std::size_t>(call.k));
    std::vector<std::uint8_t> gathered_mask;
    for (std::size_t r = begin; r < end; ++r) {
      const T* row = row_of<const T>(x, r);
      const std::uint8_t* mask = mask_row(call, r, gathered_mask);
      if (mask != nullptr) {
        row = masked_copy(call.n, row, x.stride, mask, scratch.gathered);
        if (count_taking_part(call.n, mask) == 0) {  // nothing to choose from: probabilities 0
          for (std::size_t j = 0; j < static_cast<std::size_t>(call.k); ++j) {
            topk_out<T>(call, r).set(j, narrow<T>(0.0), static_cast<std::int64_t>(j));
          }
          continue;
        }
      } else if (x.stride != 1) {
        row = gather(call.n, row, x.stride, scratch.gathered);
      }
      topk_row(call, kernel, call.n, row, t, scratch, topk_out<T>(call, r));
    }
  }
};

template <class T>
void run_topk_rows(const Call& call, const Plan& plan, TopkKernel<T> kernel) {
  const TopkRowsJob<T> job{call, kernel, plan.temperature};
  run_row_runs(call.rows, call.n * sizeof(T), plan.threads,
               [&job](std::size_t begin, std::size_t end) { job.run(begin, end); });
}

// One slice's pass over a row split across threads.
template <class T>
struct TopkSlice {
  explicit TopkSlice(std::size_t k) : scratch(k) {}
  TopkScratch<T> scratch;
  Normalizer<ComputeOf<T>> state;
};

// Few long rows: each is split across the team. Every thread passes over its slice with its own
// selector; thread 0 merges the normalizers and the candidates, in slice order, and writes the
// row (or runs the checked path on it).
template <class T>
void run_split_topk_rows(const Call& call, const Plan& plan, TopkKernel<T> kernel) {
  using C = ComputeOf<T>;
  std::vector<TopkSlice<T>> slices(plan.threads, TopkSlice<T>(static_cast<std::size_t>(call.k)));
  run_team_of(plan.threads, [&](int thread, int count) {
    const std::size_t n = call.n;
    for (std::size_t r = 0; r < call.rows; ++r) {
      const T* x = row_of<const T>(call.inputs[0], r);
      const Slice slice = slice_of(n, thread, count);
      TopkSlice<T>& mine = slices[static_cast<std::size_t>(thread)];
      mine.scratch.selector.clear();
      mine.state = reduce_topk(kernel, slice.length, x + slice.begin, static_cast<std::int64_t>(slice.begin),
                               plan.temperature, mine.scratch.selector);
      threads_barrier(count);
      if (thread == 0) {
        const Normalizer<C> total =
            merge_normalizers<C>(count, plan.temperature, [&slices](int s) -> const Normalizer<C>& {
              return slices[static_cast<std::size_t>(s)].state;
            });
        if (!fast_normalizer(total)) {
          checked_topk(call, n, x, plan.temperature, mine.scratch, topk_out<T>(call, r));
        } else {
          for (int s = 1; s < count; ++s) mine.scratch.selector.merge(slices[static_cast<std::size_t>(s)].scratch.selector);
          write_topk(call, n, x, mine.scratch.selector, total, plan.temperature, topk_out<T>(call, r));
        }
      }
      threads_barrier(count);  // the slices' selectors are reused by the next row
    }
  });
}

// Short float32 rows and small k: each run of block_columns rows transposed into a column block,
// its online totals from the column pass, the k best of each row chosen lane by lane in k
// rounds, and their probabilities by the column write pass over the k chosen values (a k-row
// block with the rows' totals). Rows the fast path declines take checked_topk.
void run_short_topk_rows(const Call& call, const Plan& plan, const ColumnPasses& passes) {
  const std::size_t n = call.n;
  const auto k = static_cast<std::size_t>(call.k);
  const std::size_t width = passes.block_columns;
  const auto stride = static_cast<std::ptrdiff_t>(width);
  const std::size_t blocks = (call.rows + width - 1) / width;
  const Temperature t = plan.temperature;
  run_team_of(plan.threads, [&](int thread, int count) {
    TopkScratch<float> scratch(k);
    std::vector<float> block(n * width), values(k * width), indices(k * width), probabilities(k * width);
    const std::size_t first = blocks * static_cast<std::size_t>(thread) / static_cast<std::size_t>(count);
    const std::size_t last = blocks * static_cast<std::size_t>(thread + 1) / static_cast<std::size_t>(count);
    for (std::size_t b = first; b < last; ++b) {
      const std::size_t row = b * width;
      const std::size_t rows = std::min(width, call.rows - row);
      passes.rows_to_block(rows, n, row_of<const float>(call.inputs[0], row), call.inputs[0].row_stride, block.data());
      ColumnTotals totals;
      passes.online_totals({n, width, block.data(), stride, nullptr, stride}, t, &totals);
      passes.select_topk(n, block.data(), k, values.data(), indices.data());
      passes.write_softmax({k, width, values.data(), stride, probabilities.data(), stride}, t, totals);
      for (std::size_t c = 0; c < rows; ++c) {
        const TopkOut<float> out = topk_out<float>(call, row + c);
        if (!fast_normalizer(Normalizer<float>{totals.sum[c], totals.exponent[c], 0.0f, totals.max[c]})) {
          checked_topk(call, n, row_of<const float>(call.inputs[0], row + c), t, scratch, out);
          continue;
        }
        for (std::size_t j = 0; j < k; ++j) {
          out.set(j, probabilities[j * width + c], static_cast<std::int64_t>(indices[j * width + c]));
        }
      }
    }
  });
}


// ---- logsumexp, states, masked rows and the second passes from a state ----------------------

// One row's operands, contiguous: x and the mask read in place when their elements are adjacent,
// else gathered; y written in place when adjacent, else into a row scattered after.
template <class T>
struct RowScratch {
  std::vector<T> x, y;
  std::vector<std::uint8_t> mask;
};

// What the state operations do with one row, by the kernels of one element type: reduce it to
// its state (the checked path where the kernel's normalizer is not a fast one), write from a
// state (the checked path for special states; the scalar kernels for temperatures the SIMD ones
// do not fold).
template <class T>
struct StatePasses {
  using C = ComputeOf<T>;
  const RowKernels<T>& kernels;
  const RowKernels<T>& scalar;
  bool simd;  // `kernels` are a SIMD target's (the fast range and temperature range apply)

  RowState<C> reduce(std::size_t n, const T* x, const std::uint8_t* mask, Temperature t, bool count) const {
    // (One-element rows take the checked pass, whose softmax of them is exactly 1.)
    if (n == 1) return checked_state(n, x, mask, t);
    const Normalizer<C> total = kernels.reduce(n, x, mask, t);
    if (!fast_normalizer(total)) return checked_state(n, x, mask, t);
    return {total.max, sum_below_max(total, t), static_cast<double>(count ? count_taking_part(n, mask) : 0)};
  }
  void write(std::size_t n, const T* x, const std::uint8_t* mask, T* y, const RowState<C>& state, Temperature t,
             bool log) const {
    const bool temperature_ok = t.value > 0 && std::isfinite(t.value);
    const bool fast_state = std::isfinite(state.max) && std::isfinite(state.sum) && state.sum > 0 && temperature_ok;
    if (!fast_state) return checked_from_state(n, x, mask, y, state, t, log);
    const bool use_simd = simd && t.value >= kSimdMinTemperature && t.value <= kSimdMaxTemperature;
    if (use_simd && !fast_row_max(static_cast<float>(state.max), t)) {
      return checked_from_state(n, x, mask, y, state, t, log);
    }
    const RowKernels<T>& k = use_simd ? kernels : scalar;
    (log ? k.write_log_softmax : k.write_softmax)(n, x, mask, y, shifted_normalizer(state), t);
  }
};

// logsumexp of row r from its state (or the checked pass, near 0 or with weights b).
template <class T>
void write_logsumexp(const Call& call, std::size_t r, const T* x, const std::uint8_t* mask,
                     const RowState<ComputeOf<T>>* state, Temperature t) {
  using Wide = WideOf<T>;
  // Results below this in magnitude take the checked pass, whose log1p keeps the terms far below
  // the maximum that log(sum) loses.
  constexpr Wide kNearZero = 0x1p-8;
  const std::size_t n = call.n;
  Wide lse, sign = 1;
  if (call.inputs[1].data != nullptr) {
    const Operand& b = call.inputs[1];
    weighted_logsumexp(n, x, row_of<const T>(b, r), b.stride, mask, t, &lse, &sign);
  } else {
    lse = logsumexp_of(*state, t);
    if (std::fabs(lse) < kNearZero) lse = checked_logsumexp(n, x, mask, t);
    sign = std::isnan(lse) ? lse : (lse == -std::numeric_limits<Wide>::infinity() ? 0 : 1);
  }
  *row_of<T>(call.outputs[0], r) = narrow<T>(lse);
  if (call.outputs[1].data != nullptr) *row_of<T>(call.outputs[1], r) = narrow<T>(sign);
}

template <class T>
struct StateRowsJob {
  const Call& call;
  StatePasses<T> passes;
  Temperature t;

  void run(std::size_t begin, std::size_t end) const {
    RowScratch<T> scratch;
    const Operand& x_operand = call.inputs[0];
    const std::size_t n = call.n;
    for (std::size_t r = begin; r < end; ++r) {
      const T* x = row_of<const T>(x_operand, r);
      if (x_operand.stride != 1) x = gather(n, x, x_operand.stride, scratch.x);
      const std::uint8_t* mask = mask_row(call, r, scratch.mask);
      run_row(r, x, mask, scratch);
    }
  }

  void run_row(std::size_t r, const T* x, const std::uint8_t* mask, RowScratch<T>& scratch) const {
    const std::size_t n = call.n;
    const Operation op = call.operation;
    if (op == Operation::kSoftmaxFromState || op == Operation::kLogSoftmaxFromState) {
      const NormalizerState& s = *row_of<const NormalizerState>(call.inputs[1], r);
      return write_y(r, x, mask, row_state<ComputeOf<T>>(s), {s.temperature, 1.0 / s.temperature},
                     op == Operation::kLogSoftmaxFromState, scratch);
    }
    if (op == Operation::kLogSumExp && call.inputs[1].data != nullptr) {
      return write_logsumexp(call, r, x, mask, nullptr, t);
    }
    const RowState<ComputeOf<T>> state = passes.reduce(n, x, mask, t, op == Operation::kSoftmaxState);
    if (op == Operation::kLogSumExp) return write_logsumexp(call, r, x, mask, &state, t);
    if (op == Operation::kSoftmaxState) {
      *row_of<NormalizerState>(call.outputs[0], r) = public_state(state, t);
      return;
    }
    write_y(r, x, mask, state, t, op == Operation::kLogSoftmax, scratch);  // a masked softmax or log_softmax
  }

  void write_y(std::size_t r, const T* x, const std::uint8_t* mask, const RowState<ComputeOf<T>>& state,
               Temperature row_t, bool log, RowScratch<T>& scratch) const {
    const Operand& y = call.outputs[0];
    const std::size_t n = call.n;
    if (y.stride == 1) return passes.write(n, x, mask, row_of<T>(y, r), state, row_t, log);
    scratch.y.resize(n);
    passes.write(n, x, mask, scratch.y.data(), state, row_t, log);
    scatter(n, scratch.y.data(), row_of<T>(y, r), y.stride);
  }
};

template <class T>
StatePasses<T> state_passes(const Plan& plan) {
  const RowKernels<T>& kernels = *row_kernels_of<T>(*plan.kernel_target->kernels());
  const RowKernels<T>& scalar = *row_kernels_of<T>(*cpu_target(Isa::kScalar).kernels());
  return {kernels, scalar, plan.kernel_target->isa() != Isa::kScalar};
}

template <class T>
void run_state_rows(const Call& call, const Plan& plan) {
  const StateRowsJob<T> job{call, state_passes<T>(plan), plan.temperature};
  run_row_runs(call.rows, call.n * sizeof(T), plan.threads,
               [&job](std::size_t begin, std::size_t end) { job.run(begin, end); });
}

// Few long contiguous rows: each thread reduces its slice to a normalizer, the normalizers are
// merged in slice order, and (softmax, log_softmax) each thread writes its slice. Rows whose
// merged normalizer is not a fast one are done whole by thread 0, by the row job.
template <class T>
void run_split_state_rows(const Call& call, const Plan& plan) {
  using C = ComputeOf<T>;
  const StateRowsJob<T> job{call, state_passes<T>(plan), plan.temperature};
  const RowKernels<T>& kernels = job.passes.kernels;
  const Temperature t = plan.temperature;
  const bool writes = call.operation == Operation::kSoftmax || call.operation == Operation::kLogSoftmax;
  struct Report {
    Normalizer<C> state;
    std::size_t count;
    char padding[64];  // one report per cache line
  };
  std::vector<Report> reports(2 * plan.threads);
  run_team_of(plan.threads, [&](int thread, int count) {
    RowScratch<T> scratch;
    for (std::size_t r = 0; r < call.rows; ++r) {
      Report* row_reports = reports.data() + (r % 2) * plan.threads;  // alternate rows: see run_split_rows
      const T* x = row_of<const T>(call.inputs[0], r);
      const std::uint8_t* mask = call.mask.data == nullptr ? nullptr : row_of<const std::uint8_t>(call.mask, r);
      const Slice slice = slice_of(call.n, thread, count);
      const std::uint8_t* slice_mask = mask == nullptr ? nullptr : mask + slice.begin;
      Report& mine = row_reports[thread];
      mine.state = kernels.reduce(slice.length, x + slice.begin, slice_mask, t);
      mine.count = call.operation == Operation::kSoftmaxState ? count_taking_part(slice.length, slice_mask) : 0;
      threads_barrier(count);
      const Normalizer<C> total =
          merge_normalizers<C>(count, t, [row_reports](int i) -> const Normalizer<C>& { return row_reports[i].state; });
      if (!fast_normalizer(total)) {
        if (thread == 0) job.run_row(r, x, mask, scratch);
        continue;
      }
      std::size_t taking_part = 0;
      for (int i = 0; i < count; ++i) taking_part += row_reports[i].count;
      const RowState<C> state{total.max, sum_below_max(total, t), static_cast<double>(taking_part)};
      if (writes) {
        job.passes.write(slice.length, x + slice.begin, slice_mask, row_of<T>(call.outputs[0], r) + slice.begin, state,
                         t, call.operation == Operation::kLogSoftmax);
      } else if (thread == 0) {
        if (call.operation == Operation::kLogSumExp) {
          write_logsumexp(call, r, x, mask, &state, t);
        } else {
          *row_of<NormalizerState>(call.outputs[0], r) = public_state(state, t);
        }
      }
    }
  });
}

// ---- topk_softmax (the gate of a mixture of experts) ------------------------------------------

// softmax scores without bias or groups: softmax_topk's fused pass over a chunk of rows at a time
// into a scratch (its plan is this call's), then each row's weights: the probabilities, or with
// renormalize the softmax of the k chosen inputs (computed from them, in the wide type, not from
// the rounded probabilities).
template <class T>
void execute_typed(const Call& call, const Plan& plan);

template <class T>
void run_router_as_topk(const Call& call, const Plan& plan) {
  using Wide = WideOf<T>;
  constexpr std::size_t kChunkRows = 4096;
  const auto k = static_cast<std::size_t>(call.k);
  std::vector<T> values(std::min(call.rows, kChunkRows) * k);
  std::vector<std::int64_t> indices(values.size());
  std::vector<Wide> terms(k);
  const Operand& x = call.inputs[0];
  for (std::size_t begin = 0; begin < call.rows; begin += kChunkRows) {
    Call chunk = call;
    chunk.operation = Operation::kSoftmaxTopk;
    chunk.rows = std::min(kChunkRows, call.rows - begin);
    chunk.inputs[0].data = row_of<const T>(x, begin);
    chunk.outputs[0] = {values.data(), static_cast<std::ptrdiff_t>(k), 1};
    chunk.outputs[1] = {indices.data(), static_cast<std::ptrdiff_t>(k), 1};
    execute_typed<T>(chunk, plan);
    for (std::size_t r = 0; r < chunk.rows; ++r) {
      const T* row = row_of<const T>(x, begin + r);
      float* weights = row_of<float>(call.outputs[0], begin + r);
      std::int32_t* ids = row_of<std::int32_t>(call.outputs[1], begin + r);
      const auto input = [&](std::size_t j) -> Wide {
        return widen(row[static_cast<std::ptrdiff_t>(indices[r * k + j]) * x.stride]);
      };
      // renormalize: exp(x_j - x_0) / their sum (x_0 the largest chosen); with +inf chosen, the
      // probabilities (1/count at the +inf entries, else 0) over theirs.
      Wide total = 0;
      if (call.router.renormalize) {
        const bool at_inf = std::isinf(input(0));
        for (std::size_t j = 0; j < k; ++j) {
          terms[j] = at_inf ? widen(values[r * k + j]) : std::exp(input(j) - input(0));
          total += terms[j];
        }
      }
      for (std::size_t j = 0; j < k; ++j) {
        const Wide probability = widen(values[r * k + j]);
        const Wide weight = call.router.renormalize ? terms[j] / total : probability;
        const bool nan = std::isnan(probability);
        weights[static_cast<std::ptrdiff_t>(j) * call.outputs[0].stride] =
            static_cast<float>(nan ? probability : weight * static_cast<Wide>(call.router.scaling));
        ids[static_cast<std::ptrdiff_t>(j) * call.outputs[1].stride] = static_cast<std::int32_t>(indices[r * k + j]);
      }
    }
  }
}

template <class T>
void run_router_rows(const Call& call, const Plan& plan) {
  // Float32 sigmoid scores take their exponentials from a SIMD target's output pass.
  WriteKernel<float> exp_pass = nullptr;
  if constexpr (std::is_same_v<T, float>) {
    if (plan.kernel_target->isa() != Isa::kScalar) exp_pass = plan.kernel_target->kernels()->f32->write_softmax;
  }
  run_row_runs(call.rows, call.n * sizeof(T), plan.threads, [&call, exp_pass](std::size_t begin, std::size_t end) {
    RouterScratch<T> scratch;
    std::vector<T> gathered;
    const Operand& x = call.inputs[0];
    const Operand& bias = call.inputs[1];
    const Operand& weights = call.outputs[0];
    const Operand& ids = call.outputs[1];
    for (std::size_t r = begin; r < end; ++r) {
      const T* row = row_of<const T>(x, r);
      if (x.stride != 1) row = gather(call.n, row, x.stride, gathered);
      route_row(call, row, static_cast<const float*>(bias.data), bias.stride, exp_pass, scratch,
                {row_of<float>(weights, r), row_of<std::int32_t>(ids, r), weights.stride, ids.stride});
    }
  });
}

// ---- sample ---------------------------------------------------------------------------------

// Rows shared out among the threads whole; each row's random numbers depend on its index only.
// Masked rows are copied with their masked entries as -inf (they are then never drawn).
template <class T>
void run_sample_rows(const Call& call, const Plan& plan) {
  const RowKernels<T>& kernels = *row_kernels_of<T>(*plan.kernel_target->kernels());
  const RowKernels<T>& scalar = *row_kernels_of<T>(*cpu_target(Isa::kScalar).kernels());
  const SamplerKernels<T> sampler{kernels, scalar, plan.kernel_target->isa() != Isa::kScalar};
  run_row_runs(call.rows, call.n * sizeof(T), plan.threads, [&](std::size_t begin, std::size_t end) {
    SampleScratch<T> scratch;
    std::vector<T> gathered;
    std::vector<std::uint8_t> gathered_mask;
    const Operand& x = call.inputs[0];
    for (std::size_t r = begin; r < end; ++r) {
      const T* row = row_of<const T>(x, r);
      if (const std::uint8_t* mask = call.n == 0 ? nullptr : mask_row(call, r, gathered_mask)) {
        row = masked_copy(call.n, row, x.stride, mask, gathered);
      } else if (x.stride != 1) {
        row = gather(call.n, row, x.stride, gathered);
      }
      const SamplingParams& params = *row_of<const SamplingParams>(call.inputs[1], r);
      const SampleResult result = call.n == 0 ? SampleResult{kSampleEmptyRow, std::numeric_limits<double>::quiet_NaN()}
                                              : sample_row(sampler, call.n, row, params, call.seed, r, scratch);
      *row_of<std::int64_t>(call.outputs[0], r) = result.id;
      if (call.outputs[1].data != nullptr) {
        *row_of<float>(call.outputs[1], r) = static_cast<float>(result.probability);
      }
    }
  });
}

// ---- Dispatch by element type, operation and schedule --------------------------------------

// The operations that run through states: logsumexp, the states themselves, the second passes
// from a state, and masked softmax and log_softmax.
bool runs_through_states(const Call& call) {
  switch (call.operation) {
    case Operation::kSoftmax:
    case Operation::kLogSoftmax: return call.mask.data != nullptr;
    case Operation::kSoftmaxTopk:
    case Operation::kTopkSoftmax:
    case Operation::kSample: return false;
    default: return true;
  }
}

template <class T>
void execute_typed(const Call& call, const Plan& plan) {
  const TargetKernels& target = *plan.kernel_target->kernels();
  const RowKernels<T>& kernels = *row_kernels_of<T>(target);
  if (call.operation == Operation::kTopkSoftmax) {
    return router_runs_topk(call) ? run_router_as_topk<T>(call, plan) : run_router_rows<T>(call, plan);
  }
  if (call.operation == Operation::kSample) return run_sample_rows<T>(call, plan);
  if (runs_through_states(call)) {
    if (plan.schedule == Schedule::kSplitRows) return run_split_state_rows<T>(call, plan);
    return run_state_rows<T>(call, plan);
  }
  if (call.operation == Operation::kSoftmaxTopk) {
    if constexpr (std::is_same_v<T, float>) {
      if (plan.schedule == Schedule::kShortRows) return run_short_topk_rows(call, plan, *target.f32_columns);
    }
    if (plan.schedule == Schedule::kSplitRows) return run_split_topk_rows<T>(call, plan, kernels.softmax_topk);
    const bool one_element = plan.schedule == Schedule::kOneElement;
    return run_topk_rows<T>(call, plan, one_element ? nullptr : kernels.softmax_topk);
  }
  const bool log = call.operation == Operation::kLogSoftmax;
  if constexpr (std::is_same_v<T, float>) {
    if (plan.schedule == Schedule::kColumns) return run_columns(call, plan, *target.f32_columns);
    if (plan.schedule == Schedule::kShortRows) return run_short_rows(call, plan, *target.f32_columns);
    if (plan.schedule == Schedule::kSplitRows) return run_split_rows(call, plan, *target.f32_slices);
  }
  const int a = algorithm_index(plan.algorithm);
  RowKernel<T> kernel = log ? kernels.log_softmax[a] : kernels.softmax[a];
  if (plan.schedule == Schedule::kOneElement) kernel = one_element<T>;
  run_rows(call, plan, kernel, log);
}

}  // namespace

void execute_on_cpu(const Call& call, const Plan& plan) {
  switch (call.dtype) {
    case DataType::kFloat32: return execute_typed<float>(call, plan);
    case DataType::kFloat64: return execute_typed<double>(call, plan);
    case DataType::kFloat16: return execute_typed<Float16>(call, plan);
    case DataType::kBFloat16: return execute_typed<BFloat16>(call, plan);
  }
}

}  // namespace fastsoftmax
