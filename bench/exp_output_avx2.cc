// exp_output for AVX2 + FMA; compiled with the library's AVX2 flags.
#define FASTSOFTMAX_TARGET avx2  // the namespace of the library's own avx2 code, built with the same flags
#include "exp_output.h"
#include "exp_output_simd.h"
#include "kernels/simd/vec_avx2.h"

namespace fastsoftmax_bench {

void exp_output_avx2(const float* x, float* y, float* e, std::size_t n) {
  exp_output_simd<fastsoftmax::avx2::Avx2>(x, y, e, n);
}

}  // namespace fastsoftmax_bench
