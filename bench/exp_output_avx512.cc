// exp_output for AVX-512; compiled with the library's AVX-512 flags.
#define FASTSOFTMAX_TARGET avx512  // the namespace of the library's own avx512 code, built with the same flags
#include "exp_output.h"
#include "exp_output_simd.h"
#include "kernels/simd/vec_avx512.h"

namespace fastsoftmax_bench {

void exp_output_avx512(const float* x, float* y, float* e, std::size_t n) {
  exp_output_simd<fastsoftmax::avx512::Avx512>(x, y, e, n);
}

}  // namespace fastsoftmax_bench
