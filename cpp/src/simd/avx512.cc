// AVX-512 kernels: the SIMD templates instantiated for 16-float vectors.
// Compiled with the AVX-512 flags; reached only through dispatch.cc after the CPU check.
#include "simd/softmax_columns.h"
#include "simd/softmax_simd.h"
#include "simd/vec_avx512.h"

namespace fastsoftmax {

using Kernels = simd::SimdKernels<simd::Avx512>;
const SplitRowKernels kSplit = Kernels::split_table();
const ColumnKernels kColumns = simd::SimdColumns<simd::Avx512>::table();
const IsaKernels kAvx512Kernels = {Kernels::table<float>(),     nullptr,
                                     Kernels::table<Float16>(),   Kernels::table<BFloat16>(),
                                     Kernels::read_twice_write_once, &kSplit,
                                     &kColumns};

}  // namespace fastsoftmax
