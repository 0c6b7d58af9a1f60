// The avx512 target: the SIMD kernels over 16-float vectors, in namespace fastsoftmax::avx512.
// Compiled with the AVX-512 flags; run only where cpu/targets.cc finds the target supported.
#define FASTSOFTMAX_TARGET avx512
#include "kernels/simd/simd_target.h"
#include "kernels/simd/vec_avx512.h"

namespace fastsoftmax::avx512 {

const TargetKernels kKernels = SimdTarget<Avx512>::table();

}  // namespace fastsoftmax::avx512
