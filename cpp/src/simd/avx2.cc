// AVX2+FMA kernels: the SIMD templates instantiated for 8-float vectors.
// Compiled with -mavx2 -mfma; reached only through dispatch.cc after the CPU check.
#include "simd/softmax_simd.h"
#include "simd/vec_avx2.h"

namespace fastsoftmax {

const IsaKernels kAvx2Kernels = {simd::SimdKernels<simd::Avx2>::table(), nullptr};

}  // namespace fastsoftmax
