// Internal: the checked path, the one place of the special-value rules. Rows (and columns) the
// fast kernels decline (NaN, +inf, only -inf, values beyond the fast range) and one-element rows
// are computed here, plainly, in extended precision (double for float rows, long double for
// double rows).
#pragma once

#include <cstddef>

#include "kernels/kernel_types.h"

namespace fastsoftmax {

// y = softmax(x / t) (or log_softmax) of one contiguous row of n elements; y may be x:
//   - a NaN anywhere, or nothing but -inf: NaN everywhere;
//   - k entries equal to +inf share the mass: 1/k there (log: -log(k)), 0 elsewhere (log: -inf);
//   - otherwise relative to the row maximum, so huge finite values never overflow.
template <class T>
void checked_row(std::size_t n, const T* x, T* y, bool log, Temperature t);

// y[0, n) = NaN: a row with a NaN whose input may already be overwritten (in place).
template <class T>
void fill_nan(std::size_t n, T* y);

}  // namespace fastsoftmax
