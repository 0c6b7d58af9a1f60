// Internal: the top-k gate of a mixture of experts (Operation::kTopkSoftmax, RouterOptions), row
// by row: scores, the kept groups, the k best, their weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fastsoftmax/fastsoftmax.h"
#include "kernels/kernel_types.h"

namespace fastsoftmax {

// Where one row's k results go.
struct RouterOut {
  float* weights;
  std::int32_t* ids;
  std::ptrdiff_t weights_stride, ids_stride;
};

// A thread's room for one row's scores.
template <class T>
struct RouterScratch {
  std::vector<WideOf<T>> scores, choice, group_score;
  std::vector<float> exponentials;
  std::vector<std::size_t> best;
  std::vector<char> kept_group;
};

// One row of n router logits x (elements adjacent), bias null or n floats `bias_stride` apart.
// A row with a NaN (in x, or in its biased scores) gives NaN weights at ids 0..k-1, and so does a
// softmax row of only -inf. exp_pass (float32 rows on a SIMD target, else null): the output pass
// that computes the sigmoid scores' exponentials of a whole row at once (they rank the experts;
// the chosen ones' weights are computed again in the wide type).
template <class T>
void route_row(const Call& call, const T* x, const float* bias, std::ptrdiff_t bias_stride, WriteKernel<float> exp_pass,
               RouterScratch<T>& scratch, const RouterOut& out);

}  // namespace fastsoftmax
