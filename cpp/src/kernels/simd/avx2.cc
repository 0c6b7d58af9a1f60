// The avx2 target: the SIMD kernels over 8-float vectors, in namespace fastsoftmax::avx2.
// Compiled with -mavx2 -mfma -mf16c; run only where cpu/targets.cc finds the target supported.
#define FASTSOFTMAX_TARGET avx2
#include "kernels/simd/simd_target.h"
#include "kernels/simd/vec_avx2.h"

namespace fastsoftmax::avx2 {

const TargetKernels kKernels = SimdTarget<Avx2>::table();

}  // namespace fastsoftmax::avx2
