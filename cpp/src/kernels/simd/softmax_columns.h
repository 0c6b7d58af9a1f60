// The four algorithms over columns: softmax along a strided axis whose neighbouring softmaxes
// lie next to each other in memory (axis 0 of a C-contiguous matrix, say). Each SIMD lane runs
// its own softmax, so a block of kBlockColumns adjacent columns is read a row at a time with
// full vector loads, nothing gathered, and each lane's state held in registers. The per-lane
// arithmetic is that of the row kernels (softmax_simd.h: the same exp, the same double-lane
// sums, the same accuracy). The passes are called one by one by the layer (cpu/execute.cc), which
// checks each column between them and runs the checked path on the columns the fast path declines.
#pragma once

#include <algorithm>
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
  using NormalScale = typename K::NormalScale;
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
    NormalScale normal[kVectors];
    if constexpr (kStore && S::kScaleBySteps) {
      for (int j = 0; j < kVectors; ++j) normal[j] = NormalScale(sums[j].e, 1.0);
    }
    b.sweep([&](const float* row, std::size_t i) {
      ExpParts ex[kVectors];
      for (int j = 0; j < kVectors; ++j) ex[j] = K::exp_parts(K::floor_input(b.load(row, j, 0.0f), red), red);
      if constexpr (kStore) {
        V terms[kVectors], error[kVectors];
        if (all_normal(normal, ex)) {
          if constexpr (S::kScaleBySteps) {
            for (int j = 0; j < kVectors; ++j) terms[j] = normal[j].output_and_error(ex[j], table, &error[j]);
          }
        } else {
          for (int j = 0; j < kVectors; ++j) terms[j] = K::exp_output_and_error(ex[j], sums[j].e, table, &error[j]);
        }
        for (int j = 0; j < kVectors; ++j) {
          stored_error[j] = S::add(stored_error[j], error[j]);
          b.store(b.y_row(i), j, terms[j]);
          S::wide_add(sums[j].m, terms[j]);
        }
      } else {
        for (int j = 0; j < kVectors; ++j) sums[j].add_term(ex[j], table);
      }
    });
    for (int j = 0; j < kVectors; ++j) S::wide_add(sums[j].m, stored_error[j]);
    store_sums(sums, totals);
  }

  // ---- Output passes -----------------------------------------------------------------------

  // Whether every output of a row of the block is normal (K::NormalScale, per vector of columns);
  // always false on targets without S::kScaleBySteps.
  static bool all_normal(const NormalScale (&normal)[kVectors], const ExpParts (&ex)[kVectors]) {
    if constexpr (S::kScaleBySteps) {
      bool all = true;
      for (int j = 0; j < kVectors; ++j) all &= normal[j].normal(ex[j].n);
      return all;
    } else {
      return false;
    }
  }

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
    NormalScale normal[kVectors];
    if constexpr (S::kScaleBySteps) {
      // The smallest factor 1/sum of the block's lanes (finite sums; the others are declined).
      double largest_sum = 1.0;
      for (std::size_t c = 0; c < kBlockColumns; ++c) {
        if (std::isfinite(totals.sum[c])) largest_sum = std::max(largest_sum, totals.sum[c]);
      }
      for (int j = 0; j < kVectors; ++j) normal[j] = NormalScale(e[j], 1.0 / largest_sum);
    }
    b.sweep([&](const float* row, std::size_t i) {
      ExpParts ex[kVectors];
      V mantissa[kVectors];
      for (int j = 0; j < kVectors; ++j) {
        ex[j] = K::exp_parts(K::floor_input(b.load(row, j, 0.0f), red), red);
        const V hi = S::lookup(table.hi, ex[j].z);
        const V low = S::fmadd(hi, ex[j].r, S::lookup(table.lo, ex[j].z));
        const V product = S::mul(hi, inv_hi[j]);
        const V product_error = S::fmadd(hi, inv_hi[j], S::sub(S::set1(0.0f), product));
        const V rest = S::fmadd(low, inv_hi[j], S::fmadd(hi, inv_lo[j], product_error));
        mantissa[j] = S::add(product, rest);
      }
      if (all_normal(normal, ex)) {
        if constexpr (S::kScaleBySteps) {
          for (int j = 0; j < kVectors; ++j) b.store(b.y_row(i), j, S::mul(mantissa[j], S::pow2_steps(ex[j].z, normal[j].p)));
        }
      } else {
        for (int j = 0; j < kVectors; ++j) b.store(b.y_row(i), j, S::scale(mantissa[j], K::exponent_arg(ex[j].n, e[j])));
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

  // ---- Short rows to and from a block (8 x 8 tiles transposed in AVX registers) -----------

  // Transposes the 8 x 8 tile t in place: t[i] lane j becomes t[j] lane i.
  static void transpose8(__m256 (&t)[8]) {
    __m256 pairs[8], quads[8];
    for (int i = 0; i < 8; i += 2) {
      pairs[i] = _mm256_unpacklo_ps(t[i], t[i + 1]);
      pairs[i + 1] = _mm256_unpackhi_ps(t[i], t[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
      quads[i] = _mm256_shuffle_ps(pairs[i], pairs[i + 2], 0x44);
      quads[i + 1] = _mm256_shuffle_ps(pairs[i], pairs[i + 2], 0xEE);
      quads[i + 2] = _mm256_shuffle_ps(pairs[i + 1], pairs[i + 3], 0x44);
      quads[i + 3] = _mm256_shuffle_ps(pairs[i + 1], pairs[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; ++i) {
      t[i] = _mm256_permute2f128_ps(quads[i], quads[i + 4], 0x20);
      t[i + 4] = _mm256_permute2f128_ps(quads[i], quads[i + 4], 0x31);
    }
  }
  // All-ones in the first `count` (<= 8) lanes.
  static __m256i first8(std::size_t count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }

  // Whole 8 x 8 tiles (8 rows of the block, 8 elements each) move with plain loads and stores;
  // the rows past `rows` and the elements past n only in the last tiles, masked.
  static void rows_to_block(std::size_t rows, std::size_t n, const float* x, std::ptrdiff_t row_stride, float* block) {
    for (std::size_t r = 0; r < kBlockColumns; r += 8) {
      const float* x_rows = x + static_cast<std::ptrdiff_t>(r) * row_stride;
      const bool whole_rows = r + 8 <= rows;
      for (std::size_t i = 0; i < n; i += 8) {
        __m256 tile[8];
        if (whole_rows && i + 8 <= n) {
          for (std::size_t k = 0; k < 8; ++k) tile[k] = _mm256_loadu_ps(x_rows + static_cast<std::ptrdiff_t>(k) * row_stride + i);
        } else {
          const __m256i valid = first8(n - i);
          for (std::size_t k = 0; k < 8; ++k) {
            tile[k] = r + k < rows ? _mm256_maskload_ps(x_rows + static_cast<std::ptrdiff_t>(k) * row_stride + i, valid)
                                   : _mm256_setzero_ps();
          }
        }
        transpose8(tile);
        const std::size_t count = std::min<std::size_t>(8, n - i);
        for (std::size_t k = 0; k < count; ++k) _mm256_storeu_ps(block + (i + k) * kBlockColumns + r, tile[k]);
      }
    }
  }

  static void block_to_rows(std::size_t rows, std::size_t n, const float* block, float* y, std::ptrdiff_t row_stride) {
    for (std::size_t r = 0; r < rows; r += 8) {
      float* y_rows = y + static_cast<std::ptrdiff_t>(r) * row_stride;
      const std::size_t count = std::min<std::size_t>(8, rows - r);
      for (std::size_t i = 0; i < n; i += 8) {
        __m256 tile[8];
        if (i + 8 <= n) {
          for (std::size_t k = 0; k < 8; ++k) tile[k] = _mm256_loadu_ps(block + (i + k) * kBlockColumns + r);
          transpose8(tile);
          for (std::size_t k = 0; k < count; ++k) _mm256_storeu_ps(y_rows + static_cast<std::ptrdiff_t>(k) * row_stride + i, tile[k]);
          continue;
        }
        for (std::size_t k = 0; k < 8; ++k) {
          tile[k] = i + k < n ? _mm256_loadu_ps(block + (i + k) * kBlockColumns + r) : _mm256_setzero_ps();
        }
        transpose8(tile);
        const __m256i valid = first8(n - i);
        for (std::size_t k = 0; k < count; ++k) {
          _mm256_maskstore_ps(y_rows + static_cast<std::ptrdiff_t>(k) * row_stride + i, valid, tile[k]);
        }
      }
    }
  }

  // ---- softmax_topk of short rows: k rounds of a maximum per lane --------------------------

  static void select_topk(std::size_t n, float* block, std::size_t k, float* values, float* indices) {
    const V taken_mark = S::set1(std::numeric_limits<float>::quiet_NaN());
    for (std::size_t lanes = 0; lanes < kBlockColumns; lanes += kWidth) {
      V taken = S::set1(-1.0f);  // the index the previous round took: none yet
      for (std::size_t j = 0; j < k; ++j) {
        // The previous round's entry knocked out as NaN, which never compares greater nor is
        // returned by max (x86's max gives its second operand when either is NaN), and the best
        // of the rest: the first index of the largest value (later equal ones are not greater).
        const V none = S::set1(static_cast<float>(n));
        V best = S::set1(-std::numeric_limits<float>::infinity());
        V index = none;
        for (std::size_t i = 0; i < n; ++i) {
          float* p = block + i * kBlockColumns + lanes;
          const V v = S::select_equal(S::set1(static_cast<float>(i)), taken, taken_mark, S::load(p));
          S::store(p, v);
          index = S::select_greater(v, best, S::set1(static_cast<float>(i)), index);
          best = S::max(v, best);
        }
        if (S::any_greater(index, S::set1(static_cast<float>(n) - 0.5f))) {
          // Lanes with only -inf left (rows with fewer than k finite values): their first -inf.
          V first = none;
          for (std::size_t i = n; i-- > 0;) {
            first = S::select_equal(S::load(block + i * kBlockColumns + lanes), best, S::set1(static_cast<float>(i)), first);
          }
          index = S::select_equal(index, none, first, index);
        }
        S::store(values + j * kBlockColumns + lanes, best);
        S::store(indices + j * kBlockColumns + lanes, index);
        taken = index;
      }
    }
  }

  static constexpr ColumnPasses passes() {
    return {kBlockColumns,        column_max,    pair_totals<false>, pair_totals<true>, sums_below_max<false>,
            sums_below_max<true>, write_softmax, write_log_softmax,  scale_stored,      rows_to_block,
            block_to_rows,        select_topk};
  }
};

}  // namespace fastsoftmax::FASTSOFTMAX_TARGET
