// The four algorithms over columns: softmax along a strided axis whose neighbouring softmaxes
// lie next to each other in memory (axis 0 of a C-contiguous matrix, say). Each SIMD lane runs
// its own softmax, so a block of kBlockColumns adjacent columns is read a row at a time with
// full vector loads, nothing gathered, and each lane's state held in registers. The per-lane
// arithmetic is that of the row kernels (softmax_simd.h: the same exp, the same double-lane
// sums, the same accuracy). The passes are called one by one by the layer (cpu/execute.cc), which
// checks each column between them and runs the checked path on the columns the fast path declines.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>

#include <immintrin.h>

#include "kernels/simd/softmax_simd.h"

namespace fastsoftmax::FASTSOFTMAX_TARGET {

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
  static_assert(kBlockColumns <= kMaxKernelBlock, "ColumnTotals holds kMaxKernelBlock columns");
  static constexpr std::size_t kPrefetchRows = 8;

  // The block's rows, and vector j of each: lanes past the last column read as `fill` and are
  // never written.
  struct Rows {
    const ColumnBlock& b;

    const float* x_row(std::size_t i) const { return b.x + static_cast<std::ptrdiff_t>(i) * b.x_stride; }
    float* y_row(std::size_t i) const { return b.y + static_cast<std::ptrdiff_t>(i) * b.y_stride; }
    // Rows lie a stride apart, usually in different pages, where the hardware prefetchers do
    // not follow: the block's part of row i + kPrefetchRows is requested ahead.
    void prefetch(std::size_t i) const {
      if (i + kPrefetchRows >= b.n) return;
      const char* row = reinterpret_cast<const char*>(x_row(i + kPrefetchRows));
      for (std::size_t offset = 0; offset < b.columns * sizeof(float); offset += 64) {
        _mm_prefetch(row + offset, _MM_HINT_T0);
      }
    }
    // visit(row, i) for every row x_row(i) of the block, in order, prefetching ahead.
    template <class Visit>
    FASTSOFTMAX_ALWAYS_INLINE void sweep(Visit&& visit) const {
      for (std::size_t i = 0; i < b.n; ++i) {
        prefetch(i);
        visit(x_row(i), i);
      }
    }
    V load(const float* row, int j, float fill) const {
      const std::size_t start = j * kWidth;
      if (b.columns >= start + kWidth) return S::load(row + start);
      return S::load_tail(row + start, b.columns > start ? b.columns - start : 0, S::set1(fill));
    }
    void store(float* row, int j, V v) const {
      const std::size_t start = j * kWidth;
      if (b.columns >= start + kWidth) return S::store(row + start, v);
      if (b.columns > start) S::store_tail(row + start, v, b.columns - start);
    }
  };

  // The lanes' sums and exponents into the per-column totals.
  static void store_sums(const PairSum (&sums)[kVectors], ColumnTotals* totals) {
    for (int j = 0; j < kVectors; ++j) {
      S::wide_store(sums[j].m, totals->sum + j * kWidth);
      S::store(totals->exponent + j * kWidth, sums[j].e);
    }
  }

  // ---- Reduction passes --------------------------------------------------------------------

  static void column_max(const ColumnBlock& block, ColumnTotals* totals) {
    const Rows b{block};
    V max[kVectors];
    for (V& m : max) m = S::set1(-std::numeric_limits<float>::infinity());
    b.sweep([&](const float* row, std::size_t) {
      for (int j = 0; j < kVectors; ++j) max[j] = S::max(max[j], b.load(row, j, 0.0f));
    });
    for (int j = 0; j < kVectors; ++j) S::store(totals->max + j * kWidth, max[j]);
  }

  // Two-pass and online pass 1, per lane: as K::two_pass_total and K::online_total.
  template <bool kOnline>
  static void pair_totals(const ColumnBlock& block, Temperature t, ColumnTotals* totals) {
    const Rows b{block};
    const Reduction red(t);
    const ExpTable table(1.0);
    PairSum sums[kVectors];
    V max[kVectors];
    for (V& m : max) m = kOnline ? red.input_floor : S::set1(-std::numeric_limits<float>::infinity());
    b.sweep([&](const float* row, std::size_t) {
      for (int j = 0; j < kVectors; ++j) {
        const V v = b.load(row, j, -std::numeric_limits<float>::infinity());
        max[j] = S::max(max[j], v);
        const ExpParts ex = K::exp_parts(K::floor_input(v, red), red);
        const V e_new = K::exponent_of_steps(kOnline ? K::steps_of(max[j], red) : ex.n);
        sums[j].raise_exponent(kOnline ? e_new : S::max(sums[j].e, e_new));
        sums[j].add_term(ex, table);
      }
    });
    store_sums(sums, totals);
    for (int j = 0; j < kVectors; ++j) S::store(totals->max + j * kWidth, max[j]);
  }

  // Three-pass sums exp(x) * 2^-e per lane, e the exponent of the lane's maximum (those outside
  // the fast range clamped: the layer takes them to the checked path); kStore: the reloading
  // variant, which also stores the terms in y (see K::exp_output_and_error).
  template <bool kStore>
  static void sums_below_max(const ColumnBlock& block, Temperature t, ColumnTotals* totals) {
    const Rows b{block};
    const Reduction red(t);
    const ExpTable table(1.0);
    PairSum sums[kVectors];
    V stored_error[kVectors];
    const V lowest = S::set1(static_cast<float>(-kFastRangeLimit * t.value));
    for (int j = 0; j < kVectors; ++j) {
      const V max = S::load(totals->max + j * kWidth);
      sums[j].e = K::exponent_of_steps(K::steps_of(S::max(lowest, max), red));  // as K::exponent_of
      stored_error[j] = S::set1(0.0f);
    }
    b.sweep([&](const float* row, std::size_t i) {
      for (int j = 0; j < kVectors; ++j) {
        const ExpParts ex = K::exp_parts(K::floor_input(b.load(row, j, 0.0f), red), red);
        if constexpr (kStore) {
          V error;
          const V term = K::exp_output_and_error(ex, sums[j].e, table, &error);
          stored_error[j] = S::add(stored_error[j], error);
          b.store(b.y_row(i), j, term);
          S::wide_add(sums[j].m, term);
        } else {
          sums[j].add_term(ex, table);
        }
      }
    });
    for (int j = 0; j < kVectors; ++j) S::wide_add(sums[j].m, stored_error[j]);
    store_sums(sums, totals);
  }

  // ---- Output passes -----------------------------------------------------------------------

  // 1/sum per lane as hi + lo floats, and the lanes' exponents.
  static void load_inverse_sums(const ColumnTotals& totals, V (&e)[kVectors], V (&inv_hi)[kVectors],
                                V (&inv_lo)[kVectors]) {
    float hi[kBlockColumns], lo[kBlockColumns];
    for (std::size_t c = 0; c < kBlockColumns; ++c) {
      const double inv = 1.0 / totals.sum[c];
      hi[c] = static_cast<float>(inv);
      lo[c] = static_cast<float>(inv - hi[c]);
    }
    for (int j = 0; j < kVectors; ++j) {
      e[j] = S::load(totals.exponent + j * kWidth);
      inv_hi[j] = S::load(hi + j * kWidth);
      inv_lo[j] = S::load(lo + j * kWidth);
    }
  }

  // exp(x) / (sum * 2^e) per lane: the product T * (1 + r) * (1/sum) is formed with one rounding
  // (its high part's error recovered by FMA), as the row kernels' scaled table does.
  static void write_softmax(const ColumnBlock& block, Temperature t, const ColumnTotals& totals) {
    const Rows b{block};
    const Reduction red(t);
    const ExpTable table(1.0);
    V e[kVectors], inv_hi[kVectors], inv_lo[kVectors];
    load_inverse_sums(totals, e, inv_hi, inv_lo);
    b.sweep([&](const float* row, std::size_t i) {
      for (int j = 0; j < kVectors; ++j) {
        const ExpParts ex = K::exp_parts(K::floor_input(b.load(row, j, 0.0f), red), red);
        const V hi = S::lookup(table.hi, ex.z);
        const V low = S::fmadd(hi, ex.r, S::lookup(table.lo, ex.z));
        const V product = S::mul(hi, inv_hi[j]);
        const V product_error = S::fmadd(hi, inv_hi[j], S::sub(S::set1(0.0f), product));
        const V rest = S::fmadd(low, inv_hi[j], S::fmadd(hi, inv_lo[j], product_error));
        b.store(b.y_row(i), j, S::scale(S::add(product, rest), K::exponent_arg(ex.n, e[j])));
      }
    });
  }

  // (x - max) / t - log(sum(exp((x - max) / t))) per lane (see K::write_log_softmax).
  static void write_log_softmax(const ColumnBlock& block, Temperature t, const ColumnTotals& totals) {
    const Rows b{block};
    float log_sum[kBlockColumns];
    for (std::size_t c = 0; c < kBlockColumns; ++c) {
      log_sum[c] = K::log_sum_above_max(totals.sum[c], totals.exponent[c], totals.max[c], t);
    }
    V shift[kVectors], subtrahend[kVectors];
    for (int j = 0; j < kVectors; ++j) {
      shift[j] = S::load(totals.max + j * kWidth);
      subtrahend[j] = S::load(log_sum + j * kWidth);
    }
    const V inverse = S::set1(static_cast<float>(t.inverse));
    b.sweep([&](const float* row, std::size_t i) {
      for (int j = 0; j < kVectors; ++j) {
        const V shifted = S::sub(b.load(row, j, 0.0f), shift[j]);
        b.store(b.y_row(i), j, S::fmadd(shifted, inverse, S::sub(S::set1(0.0f), subtrahend[j])));
      }
    });
  }

  // The reloading variant's last pass: y *= 1/sum per lane, with one rounding.
  static void scale_stored(const ColumnBlock& block, const ColumnTotals& totals) {
    const Rows b{block};
    V e[kVectors], inv_hi[kVectors], inv_lo[kVectors];
    load_inverse_sums(totals, e, inv_hi, inv_lo);
    for (std::size_t i = 0; i < block.n; ++i) {
      float* row = b.y_row(i);
      for (int j = 0; j < kVectors; ++j) {
        const V v = b.load(row, j, 0.0f);
        b.store(row, j, S::fmadd(v, inv_hi[j], S::mul(v, inv_lo[j])));
      }
    }
  }

  static constexpr ColumnPasses passes() {
    return {kBlockColumns,   column_max,    pair_totals<false>, pair_totals<true>, sums_below_max<false>,
            sums_below_max<true>, write_softmax, write_log_softmax,  scale_stored};
  }
};

}  // namespace fastsoftmax::FASTSOFTMAX_TARGET
