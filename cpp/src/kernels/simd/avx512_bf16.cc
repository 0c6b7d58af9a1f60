// The avx512_bf16 target: avx512's kernels, but bfloat16 rows stored with AVX512_BF16's
// vcvtneps2bf16 (vec_avx512_bf16.h), in namespace fastsoftmax::avx512_bf16. Only the bfloat16
// kernels are its own: the planner takes the others from avx512. Compiled with the AVX-512 flags
// and -mavx512bf16; run only where cpu/targets.cc finds the target supported.
#define FASTSOFTMAX_TARGET avx512_bf16
#include "kernels/simd/simd_target.h"
#include "kernels/simd/vec_avx512_bf16.h"

namespace fastsoftmax::avx512_bf16 {

const TargetKernels kKernels = SimdTarget<Avx512Bf16>::bfloat16_table();

}  // namespace fastsoftmax::avx512_bf16
