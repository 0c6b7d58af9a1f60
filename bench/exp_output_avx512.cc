// exp_output for AVX-512; compiled with the library's AVX-512 flags.
#include "exp_output.h"
#include "exp_output_simd.h"
#include "simd/vec_avx512.h"

namespace fastsoftmax_bench {

void exp_output_avx512(const float* x, float* y, float* e, std::size_t n) {
  exp_output_simd<fastsoftmax::simd::Avx512>(x, y, e, n);
}

}  // namespace fastsoftmax_bench
