// The bfloat16 kernels of AVX-512 CPUs with the BF16 extension: the SIMD templates over
// Avx512Bf16. Compiled with the AVX-512 flags and -mavx512bf16; dispatch.cc puts them in place
// of the AVX-512 bfloat16 kernels when the CPU reports AVX512_BF16.
#include "simd/softmax_simd.h"
#include "simd/vec_avx512_bf16.h"

namespace fastsoftmax {

const RowKernels<BFloat16> kAvx512Bf16Kernels = simd::SimdKernels<simd::Avx512Bf16>::table<BFloat16>();

}  // namespace fastsoftmax
