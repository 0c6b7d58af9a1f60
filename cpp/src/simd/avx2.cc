// AVX2+FMA kernels: the SIMD templates instantiated for 8-float vectors.
// Compiled with -mavx2 -mfma; reached only through dispatch.cc after the CPU check.
#include "simd/softmax_columns.h"
#include "simd/softmax_simd.h"
#include "simd/vec_avx2.h"

namespace fastsoftmax {

using Kernels = simd::SimdKernels<simd::Avx2>;
const SplitRowKernels kSplit = Kernels::split_table();
const ColumnKernels kColumns = simd::SimdColumns<simd::Avx2>::table();
const IsaKernels kAvx2Kernels = {Kernels::table<float>(),     nullptr,
                                     Kernels::table<Float16>(),   Kernels::table<BFloat16>(),
                                     Kernels::read_twice_write_once, &kSplit,
                                     &kColumns};

}  // namespace fastsoftmax
