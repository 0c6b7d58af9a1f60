// exp_output (see exp_output.h) written once over the library's vector traits S
// (kernels/simd/vec_avx2.h, vec_avx512.h); exp_output_<isa>.cc instantiate it with their flags.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>

#include "exp_output.h"
#include "kernels/simd/softmax_simd.h"

namespace fastsoftmax_bench {

template <class S>
void exp_output_simd(const float* x, float* y, float* e, std::size_t n) {
  using Kernels = fastsoftmax::FASTSOFTMAX_TARGET::SimdKernels<S>;
  static_assert(kExpOutputStep % S::kWidth == 0, "whole vectors only");
  assert(n % kExpOutputStep == 0);
  // The table of softmax's output pass for a row whose sum is 1, at temperature 1.
  const typename Kernels::ExpTable table(1.0);
  const typename Kernels::Reduction reduction(fastsoftmax::kNoTemperature);
  for (std::size_t i = 0; i < n; ++i) e[i] = std::max(0.0f, Kernels::exponent_of(x[i], reduction));
  for (std::size_t i = 0; i < n; i += S::kWidth) {
    const typename Kernels::ExpParts parts =
        Kernels::exp_parts(Kernels::floor_input(S::load(x + i), reduction), reduction);
    S::store(y + i, Kernels::exp_output(parts, S::load(e + i), table));
  }
}

}  // namespace fastsoftmax_bench
