// Internal: the checked path, the one place of the special-value rules. Rows (and columns) the
// fast kernels decline (NaN, +inf, only -inf, values beyond the fast range) and one-element rows
// are computed here, plainly, in extended precision (double for float rows, long double for
// double rows).
#pragma once

#include <cstddef>

#include "cpu/normalizer.h"
#include "kernels/kernel_types.h"

namespace fastsoftmax {

// y = softmax(x / t) (or log_softmax) of one contiguous row of n elements; y may be x:
//   - a NaN anywhere, or nothing but -inf: NaN everywhere;
//   - k entries equal to +inf share the mass: 1/k there (log: -log(k)), 0 elsewhere (log: -inf);
//   - otherwise relative to the row maximum, so huge finite values never overflow.
template <class T>
void checked_row(std::size_t n, const T* x, T* y, bool log, Temperature t);

// The state of one contiguous row (or shard) of n elements, by NormalizerState's rules; mask (null:
// none): entries whose byte is 0 take no part.
template <class T>
RowState<ComputeOf<T>> checked_state(std::size_t n, const T* x, const std::uint8_t* mask, Temperature t);

// log(sum_i exp(x_i / t)) of a row with a finite maximum m, as m / t + log(c) + log1p(r / c), c
// the entries equal to m and r the sum of the others' terms: accurate for results near 0, where
// log(sum) loses the terms far below m (logsumexp({0, -40}) = 4.25e-18).
template <class T>
WideOf<T> checked_logsumexp(std::size_t n, const T* x, const std::uint8_t* mask, Temperature t);

// log|sum_i b_i exp(x_i / t)| and the sign of the sum (scipy.special.logsumexp with b): entries
// with b_i = 0 or masked take no part; NaN (in x or b) gives (NaN, NaN); +inf entries give +inf
// with the sign of their b's sum (NaN if it is 0); nothing left, or a sum of 0: (-inf, 0).
// b's elements are b_stride apart.
template <class T>
void weighted_logsumexp(std::size_t n, const T* x, const T* b, std::ptrdiff_t b_stride, const std::uint8_t* mask,
                        Temperature t, WideOf<T>* lse, WideOf<T>* sign);

// softmax (or log_softmax) of one contiguous shard of n elements from its row's state, for the
// states the write kernels do not take (special values, values beyond the fast range, a bad
// temperature): NormalizerState's rules. Masked entries get 0 (log: -inf). y may be x.
template <class T>
void checked_from_state(std::size_t n, const T* x, const std::uint8_t* mask, T* y, const RowState<ComputeOf<T>>& state,
                        Temperature t, bool log);

// y[0, n) = NaN: a row with a NaN whose input may already be overwritten (in place).
template <class T>
void fill_nan(std::size_t n, T* y);

}  // namespace fastsoftmax
