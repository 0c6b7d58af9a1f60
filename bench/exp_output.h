// exp_output_<isa>: exp exactly as the softmax kernels of one ISA compute their outputs, for the
// exhaustive accuracy check in exp_ulp.cc. One function per ISA, each in its own file compiled
// with the library's flags for that ISA.
#pragma once

#include <cstddef>

namespace fastsoftmax_bench {

// Multiple of every vector width: the functions take whole vectors only.
inline constexpr std::size_t kExpOutputStep = 16;

// For i < n (a multiple of kExpOutputStep): e[i] = max(0, E(x[i])), where E(x) is the power of
// two the kernels take out of a row whose maximum is x, and y[i] = exp(x[i]) * 2^-e[i] through
// SimdKernels<S>::exp_parts and exp_output, the code of the kernels' output pass. So x <= 0
// gives exp(x) itself (subnormal results included), and x > 0 gives exp(x) scaled as a row
// maximum is, which keeps the scaling in its domain for every x whose exp is finite.
void exp_output_avx2(const float* x, float* y, float* e, std::size_t n);
void exp_output_avx512(const float* x, float* y, float* e, std::size_t n);

}  // namespace fastsoftmax_bench
