// The four algorithms over columns: softmax along a strided axis whose neighbouring softmaxes
// lie next to each other in memory (axis 0 of a C-contiguous matrix, say). Each SIMD lane runs
// its own softmax, so a block of kBlockColumns adjacent columns is read a row at a time with
// full vector loads, nothing gathered, and each lane's state held in registers. The per-lane
// arithmetic is that of the row kernels (softmax_simd.h: the same exp, the same double-lane
// sums, the same accuracy).
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include <immintrin.h>

#include "simd/softmax_simd.h"

namespace fastsoftmax::simd {

template <class S>
struct SimdColumns {
  using K = SimdKernels<S>;
  using V = typename S::V;
  using ExpParts = typename K::ExpParts;
  using Reduction = typename K::Reduction;
  using ExpTable = typename K::ExpTable;
  using PairSum = typename K::PairSum;
  static constexpr std::size_t kWidth = S::kWidth;
  // Column vectors per block: enough independent work per row; the block's n rows (n * 256 bytes
  // with AVX-512) stay in L2 between passes for n up to a few thousand. Wider blocks (state in
  // L1 arrays instead of registers) measured slower here.
  static constexpr int kVectors = 4;
  static constexpr std::size_t kBlockColumns = kVectors * kWidth;
  static constexpr std::size_t kPrefetchRows = 8;

  // A block: columns [0, cols) of the rows x[i * stride], i < n.
  struct Block {
    std::size_t n, cols;
    const float* x;
    std::ptrdiff_t x_stride;
    float* y;
    std::ptrdiff_t y_stride;
    const Reduction& red;  // exp(x / t) for the call's temperature

    const float* x_row(std::size_t i) const { return x + static_cast<std::ptrdiff_t>(i) * x_stride; }
    float* y_row(std::size_t i) const { return y + static_cast<std::ptrdiff_t>(i) * y_stride; }
    // Rows lie a stride apart, usually in different pages, where the hardware prefetchers do
    // not follow: the block's part of row i + kPrefetchRows is requested ahead.
    void prefetch(std::size_t i) const {
      if (i + kPrefetchRows >= n) return;
      const char* row = reinterpret_cast<const char*>(x_row(i + kPrefetchRows));
      for (std::size_t offset = 0; offset < cols * sizeof(float); offset += 64) {
        _mm_prefetch(row + offset, _MM_HINT_T0);
      }
    }
    // Vector j of a row: lanes past the last column read as `fill` and are never written.
    V load(const float* row, int j, float fill) const {
      const std::size_t start = j * kWidth;
      if (cols >= start + kWidth) return S::load(row + start);
      return S::load_tail(row + start, cols > start ? cols - start : 0, S::set1(fill));
    }
    void store(float* row, int j, V v) const {
      const std::size_t start = j * kWidth;
      if (cols >= start + kWidth) return S::store(row + start, v);
      if (cols > start) S::store_tail(row + start, v, cols - start);
    }
  };

  // Per-lane results of the reduction passes, as plain arrays for the per-column decisions.
  struct Lanes {
    double sum[kBlockColumns];
    float exponent[kBlockColumns];
    float max[kBlockColumns];
  };

  static void store_lanes(const PairSum (&totals)[kVectors], const V (&max)[kVectors], Lanes& lanes) {
    for (int j = 0; j < kVectors; ++j) {
      S::wide_store(totals[j].m, lanes.sum + j * kWidth);
      S::store(lanes.exponent + j * kWidth, totals[j].e);
      S::store(lanes.max + j * kWidth, max[j]);
    }
  }

  // ---- Reduction passes --------------------------------------------------------------------

  static void column_max(const Block& b, V (&max)[kVectors]) {
    for (V& m : max) m = S::set1(-std::numeric_limits<float>::infinity());
    for (std::size_t i = 0; i < b.n; ++i) {
      b.prefetch(i);
      const float* row = b.x_row(i);
      for (int j = 0; j < kVectors; ++j) max[j] = S::max(max[j], b.load(row, j, 0.0f));
    }
  }

  // Two-pass and online pass 1, per lane: as K::two_pass_total and K::online_total.
  template <bool kOnline>
  static void pair_totals(const Block& b, PairSum (&totals)[kVectors], V (&max)[kVectors]) {
    const ExpTable table(1.0);
    for (V& m : max) m = kOnline ? b.red.input_floor : S::set1(-std::numeric_limits<float>::infinity());
    for (std::size_t i = 0; i < b.n; ++i) {
      b.prefetch(i);
      const float* row = b.x_row(i);
      for (int j = 0; j < kVectors; ++j) {
        const V v = b.load(row, j, -std::numeric_limits<float>::infinity());
        max[j] = S::max(max[j], v);
        const ExpParts ex = K::exp_parts(K::floor_input(v, b.red), b.red);
        const V e_new = K::exponent_of_steps(kOnline ? K::steps_of(max[j], b.red) : ex.n);
        totals[j].raise_exponent(kOnline ? e_new : S::max(totals[j].e, e_new));
        totals[j].add_term(ex, table);
      }
    }
  }

  // Three-pass sums exp(x) * 2^-e per lane; kStore: the reloading variant, which also stores the
  // terms in y (see K::exp_output_and_error).
  template <bool kStore>
  static void sums_below_max(const Block& b, const V (&e)[kVectors], PairSum (&totals)[kVectors]) {
    const ExpTable table(1.0);
    for (int j = 0; j < kVectors; ++j) totals[j].e = e[j];
    V stored_error[kVectors];
    for (V& s : stored_error) s = S::set1(0.0f);
    for (std::size_t i = 0; i < b.n; ++i) {
      b.prefetch(i);
      const float* row = b.x_row(i);
      for (int j = 0; j < kVectors; ++j) {
        const ExpParts ex = K::exp_parts(K::floor_input(b.load(row, j, 0.0f), b.red), b.red);
        if constexpr (kStore) {
          V error;
          const V term = K::exp_output_and_error(ex, e[j], table, &error);
          stored_error[j] = S::add(stored_error[j], error);
          b.store(b.y_row(i), j, term);
          S::wide_add(totals[j].m, term);
        } else {
          totals[j].add_term(ex, table);
        }
      }
    }
    for (int j = 0; j < kVectors; ++j) S::wide_add(totals[j].m, stored_error[j]);
  }

  // ---- Output passes -----------------------------------------------------------------------

  // 1/sum per lane as hi + lo floats, and the lanes' exponents.
  static void load_inverse_sums(const Lanes& lanes, V (&e)[kVectors], V (&inv_hi)[kVectors], V (&inv_lo)[kVectors]) {
    float hi[kBlockColumns], lo[kBlockColumns];
    for (std::size_t c = 0; c < kBlockColumns; ++c) {
      const double inv = 1.0 / lanes.sum[c];
      hi[c] = static_cast<float>(inv);
      lo[c] = static_cast<float>(inv - hi[c]);
    }
    for (int j = 0; j < kVectors; ++j) {
      e[j] = S::load(lanes.exponent + j * kWidth);
      inv_hi[j] = S::load(hi + j * kWidth);
      inv_lo[j] = S::load(lo + j * kWidth);
    }
  }

  // exp(x) / (sum * 2^e) per lane: the product T * (1 + r) * (1/sum) is formed with one rounding
  // (its high part's error recovered by FMA), as the row kernels' scaled table does.
  static void write_softmax(const Block& b, const Lanes& lanes) {
    const ExpTable table(1.0);
    V e[kVectors], inv_hi[kVectors], inv_lo[kVectors];
    load_inverse_sums(lanes, e, inv_hi, inv_lo);
    for (std::size_t i = 0; i < b.n; ++i) {
      b.prefetch(i);
      const float* row = b.x_row(i);
      for (int j = 0; j < kVectors; ++j) {
        const ExpParts ex = K::exp_parts(K::floor_input(b.load(row, j, 0.0f), b.red), b.red);
        const V hi = S::lookup(table.hi, ex.z);
        const V low = S::fmadd(hi, ex.r, S::lookup(table.lo, ex.z));
        const V product = S::mul(hi, inv_hi[j]);
        const V product_error = S::fmadd(hi, inv_hi[j], S::sub(S::set1(0.0f), product));
        const V rest = S::fmadd(low, inv_hi[j], S::fmadd(hi, inv_lo[j], product_error));
        b.store(b.y_row(i), j, S::scale(S::add(product, rest), K::exponent_arg(ex.n, e[j])));
      }
    }
  }

  // (x - max) / t - log(sum(exp((x - max) / t))) per lane (see K::write_log_softmax).
  static void write_log_softmax(const Block& b, const Lanes& lanes) {
    float log_sum[kBlockColumns];
    for (std::size_t c = 0; c < kBlockColumns; ++c) {
      log_sum[c] = K::log_sum_above_max(lanes.sum[c], lanes.exponent[c], lanes.max[c], b.red.temperature);
    }
    V shift[kVectors], subtrahend[kVectors];
    for (int j = 0; j < kVectors; ++j) {
      shift[j] = S::load(lanes.max + j * kWidth);
      subtrahend[j] = S::load(log_sum + j * kWidth);
    }
    const V inverse = S::set1(static_cast<float>(b.red.temperature.inverse));
    for (std::size_t i = 0; i < b.n; ++i) {
      b.prefetch(i);
      const float* row = b.x_row(i);
      for (int j = 0; j < kVectors; ++j) {
        const V shifted = S::sub(b.load(row, j, 0.0f), shift[j]);
        b.store(b.y_row(i), j, S::fmadd(shifted, inverse, S::sub(S::set1(0.0f), subtrahend[j])));
      }
    }
  }

  // The reloading variant's last pass: y *= 1/sum per lane, with one rounding.
  static void scale_stored(const Block& b, const Lanes& lanes) {
    V e[kVectors], inv_hi[kVectors], inv_lo[kVectors];
    load_inverse_sums(lanes, e, inv_hi, inv_lo);
    for (std::size_t i = 0; i < b.n; ++i) {
      float* row = b.y_row(i);
      for (int j = 0; j < kVectors; ++j) {
        const V v = b.load(row, j, 0.0f);
        b.store(row, j, S::fmadd(v, inv_hi[j], S::mul(v, inv_lo[j])));
      }
    }
  }

  // ---- Columns the fast path declines ------------------------------------------------------

  // Columns with NaN, +inf, only -inf or huge values take the checked path: each is gathered
  // (before anything of the block is written, so in-place works), computed, and scattered over
  // what the block's output pass wrote there.
  struct CheckedColumns {
    std::vector<std::size_t> columns;
    std::vector<float> values;  // n per column

    void add(const Block& b, std::size_t c, bool log) {
      columns.push_back(c);
      const std::size_t offset = values.size();
      values.resize(offset + b.n);
      float* column = values.data() + offset;
      for (std::size_t i = 0; i < b.n; ++i) column[i] = b.x_row(i)[c];
      checked_row(b.n, column, column, log, b.red.temperature);
    }
    void add_nan(const Block& b, std::size_t c) {
      columns.push_back(c);
      values.resize(values.size() + b.n, std::numeric_limits<float>::quiet_NaN());
    }
    void scatter(const Block& b) const {
      for (std::size_t k = 0; k < columns.size(); ++k) {
        for (std::size_t i = 0; i < b.n; ++i) b.y_row(i)[columns[k]] = values[k * b.n + i];
      }
    }
  };

  // ---- The algorithms ----------------------------------------------------------------------

  template <Algorithm kAlgorithm, bool kLog>
  static void run(std::size_t n, std::size_t cols, const float* x, std::ptrdiff_t x_stride, float* y,
                  std::ptrdiff_t y_stride, Temperature t) {
    const Reduction red(t);
    const Block b{n, cols, x, x_stride, y, y_stride, red};
    PairSum totals[kVectors];
    V max[kVectors];
    Lanes lanes;
    CheckedColumns checked;
    constexpr bool kReload = kAlgorithm == Algorithm::kThreePassReload && !kLog;
    if constexpr (kAlgorithm == Algorithm::kTwoPass || kAlgorithm == Algorithm::kOnline) {
      pair_totals<kAlgorithm == Algorithm::kOnline>(b, totals, max);
      store_lanes(totals, max, lanes);
      for (std::size_t c = 0; c < cols; ++c) {
        if (!fast_row_total(lanes.sum[c], lanes.exponent[c])) checked.add(b, c, kLog);
      }
    } else {
      column_max(b, max);
      V e[kVectors];
      for (int j = 0; j < kVectors; ++j) {
        // As K::exponent_of; lanes outside the fast range are recomputed as checked columns.
        const V lowest = S::set1(static_cast<float>(-kFastRangeLimit * t.value));
        e[j] = K::exponent_of_steps(K::steps_of(S::max(lowest, max[j]), red));
      }
      float lane_max[kBlockColumns];
      for (int j = 0; j < kVectors; ++j) S::store(lane_max + j * kWidth, max[j]);
      for (std::size_t c = 0; c < cols; ++c) {
        if (!fast_row_max(lane_max[c], t)) checked.add(b, c, kLog);
      }
      sums_below_max<kReload>(b, e, totals);
      store_lanes(totals, max, lanes);
      // A finite maximum and a non-finite sum: a NaN in the column, which gives NaN.
      for (std::size_t c = 0; c < cols; ++c) {
        if (!std::isfinite(lanes.sum[c]) && fast_row_max(lane_max[c], t)) checked.add_nan(b, c);
      }
    }
    if constexpr (kLog) {
      write_log_softmax(b, lanes);
    } else if constexpr (kReload) {
      scale_stored(b, lanes);
    } else {
      write_softmax(b, lanes);
    }
    checked.scatter(b);
  }

  static constexpr ColumnKernels table() {
    return {
        {run<Algorithm::kTwoPass, false>, run<Algorithm::kThreePassReload, false>,
         run<Algorithm::kThreePassRecompute, false>, run<Algorithm::kOnline, false>},
        {run<Algorithm::kTwoPass, true>, run<Algorithm::kThreePassRecompute, true>,
         run<Algorithm::kThreePassRecompute, true>, run<Algorithm::kOnline, true>},
        kBlockColumns,
    };
  }
};

}  // namespace fastsoftmax::simd
