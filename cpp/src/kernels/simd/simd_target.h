// The kernel table of one SIMD target (TargetKernels): the templates of softmax_simd.h and
// softmax_columns.h instantiated over the target's vector traits S. Included by the target's
// translation unit, inside its namespace (FASTSOFTMAX_TARGET).
#pragma once

#include "kernels/simd/softmax_columns.h"
#include "kernels/simd/softmax_simd.h"

namespace fastsoftmax::FASTSOFTMAX_TARGET {

template <class S>
struct SimdTarget {
  using Kernels = SimdKernels<S>;
  static constexpr RowKernels<float> kFloat32 = Kernels::template row_kernels<float>();
  static constexpr RowKernels<Float16> kFloat16 = Kernels::template row_kernels<Float16>();
  static constexpr RowKernels<BFloat16> kBFloat16 = Kernels::template row_kernels<BFloat16>();
  static constexpr SlicePasses kSlices = Kernels::slice_passes();
  static constexpr ColumnPasses kColumns = SimdColumns<S>::passes();

  // Every kernel of the target. No float64 kernels: float64 rows run the scalar ones.
  static constexpr TargetKernels table() {
    return {Kernels::kExpMethod, Kernels::kBlock, &kFloat32, nullptr,  &kFloat16,
            &kBFloat16,          &kSlices,        &kColumns, Kernels::read_twice_write_once};
  }
  // Only the bfloat16 kernels (a target that differs from another in bfloat16 stores alone).
  static constexpr TargetKernels bfloat16_table() {
    return {Kernels::kExpMethod, Kernels::kBlock, nullptr, nullptr, nullptr, &kBFloat16, nullptr, nullptr, nullptr};
  }
};

}  // namespace fastsoftmax::FASTSOFTMAX_TARGET
