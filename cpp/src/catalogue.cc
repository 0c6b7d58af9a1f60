// The kernel catalogue: the name of every kernel variant, made from its fields in one place, and
// the list of every kernel compiled into this library (read from the targets' tables).
#include "catalogue.h"

#include <vector>

#include "cpu/targets.h"

namespace fastsoftmax {
namespace {

enum class Layout { kRows, kColumns, kSplitRows };

constexpr const char* kShortDtypeNames[] = {"f32", "f64", "f16", "bf16"};  // by DataType
constexpr const char* kLayoutNames[] = {"rows", "columns", "split rows"};
constexpr const char* kChecked = "checked";  // the checked path, in place of an algorithm

// <dtype>-<operation>-<algorithm>-<target>-<exp method>-<tile>[-split].
std::string kernel_name(DataType dtype, Operation operation, const char* algorithm, const CpuTarget& target,
                        Layout layout) {
  const TargetKernels& kernels = *target.kernels();
  std::string tile;
  if (layout == Layout::kColumns) {
    tile = "c" + std::to_string(kernels.f32_columns->block_columns);
  } else {
    tile = "u" + std::to_string(kernels.block_elements);
    if (layout == Layout::kSplitRows) tile += "-split";
  }
  return catalogue_name(dtype, operation, algorithm, target.name(), kernels.exp_method, tile);
}

KernelInfo info(DataType dtype, Operation operation, const char* algorithm, const CpuTarget& target, Layout layout) {
  return {kernel_name(dtype, operation, algorithm, target, layout), dtype, operation, algorithm, target.isa(),
          kLayoutNames[static_cast<int>(layout)], target.name()};
}

// The checked path is portable code of the baseline: named as the scalar target's.
const CpuTarget& checked_code() { return cpu_target(Isa::kScalar); }

template <class T>
void add_row_kernels(const RowKernels<T>* table, DataType dtype, const CpuTarget& target,
                     std::vector<KernelInfo>& out) {
  if (table == nullptr) return;
  for (int a = 0; a < kNumAlgorithms; ++a) {
    const Algorithm algorithm = static_cast<Algorithm>(a + 1);
    if (table->softmax[a] != nullptr) {
      out.push_back(info(dtype, Operation::kSoftmax, algorithm_name(algorithm), target, Layout::kRows));
    }
    if (table->log_softmax[a] != nullptr) {
      out.push_back(info(dtype, Operation::kLogSoftmax, algorithm_name(algorithm), target, Layout::kRows));
    }
  }
  if (table->softmax_topk != nullptr) {
    out.push_back(info(dtype, Operation::kSoftmaxTopk, algorithm_name(Algorithm::kOnline), target, Layout::kRows));
  }
  // topk_softmax: softmax_topk's pass for float32 and float64 softmax scores, else the router's
  // portable code (named as the scalar target's).
  const bool wide_probabilities = dtype == DataType::kFloat32 || dtype == DataType::kFloat64;
  if ((table->softmax_topk != nullptr && wide_probabilities) || target.isa() == Isa::kScalar) {
    out.push_back(info(dtype, Operation::kTopkSoftmax, algorithm_name(Algorithm::kOnline), target, Layout::kRows));
  }
  // The state passes (reduce, write from a state): two-pass's, online's on the scalar target.
  if (table->reduce != nullptr) {
    const char* algorithm = algorithm_name(target.isa() == Isa::kScalar ? Algorithm::kOnline : Algorithm::kTwoPass);
    for (Operation operation : {Operation::kLogSumExp, Operation::kSoftmaxState, Operation::kSoftmaxFromState,
                                Operation::kLogSoftmaxFromState}) {
      out.push_back(info(dtype, operation, algorithm, target, Layout::kRows));
    }
    for (Operation operation : {Operation::kLogSumExp, Operation::kSoftmaxState}) {
      out.push_back(info(dtype, operation, algorithm, target, Layout::kSplitRows));
    }
    // sample: the reduction (and softmax_topk's pass), then the filters and the draw.
    out.push_back(info(dtype, Operation::kSample, algorithm, target, Layout::kRows));
  }
}

// The float32 passes for split rows and column blocks, per algorithm (log_softmax: never reload).
void add_pass_kernels(const CpuTarget& target, Layout layout, std::vector<KernelInfo>& out) {
  for (Operation operation : {Operation::kSoftmax, Operation::kLogSoftmax}) {
    for (int a = 0; a < kNumAlgorithms; ++a) {
      const Algorithm algorithm = static_cast<Algorithm>(a + 1);
      if (operation == Operation::kLogSoftmax && algorithm == Algorithm::kThreePassReload) continue;
      out.push_back(info(DataType::kFloat32, operation, algorithm_name(algorithm), target, layout));
    }
  }
  // Short rows' softmax_topk (online totals) runs on the column kernels.
  if (layout == Layout::kColumns) {
    for (Operation operation : {Operation::kSoftmaxTopk, Operation::kTopkSoftmax}) {
      out.push_back(info(DataType::kFloat32, operation, algorithm_name(Algorithm::kOnline), target, layout));
    }
  }
}

}  // namespace

std::string catalogue_name(DataType dtype, Operation operation, const char* algorithm, const char* target,
                           const char* exp_method, const std::string& tile) {
  return std::string(kShortDtypeNames[static_cast<int>(dtype)]) + "-" + operation_name(operation) + "-" + algorithm +
         "-" + target + "-" + exp_method + "-" + tile;
}

std::string planned_kernel_name(const Call& call, const Plan& plan) {
  if (plan.schedule == Schedule::kOneElement) {
    return kernel_name(call.dtype, call.operation, kChecked, checked_code(), Layout::kRows);
  }
  Layout layout = Layout::kRows;
  // Short rows run the column kernels on their transposed blocks.
  if (plan.schedule == Schedule::kColumns || plan.schedule == Schedule::kShortRows) layout = Layout::kColumns;
  // softmax_topk's kernel passes over slices as it does over rows (short rows: the column kernels').
  if (plan.schedule == Schedule::kSplitRows && call.operation != Operation::kSoftmaxTopk &&
      call.operation != Operation::kTopkSoftmax) {
    layout = Layout::kSplitRows;
  }
  return kernel_name(call.dtype, call.operation, algorithm_name(plan.algorithm), *plan.kernel_target, layout);
}

std::vector<KernelInfo> kernels() {
  std::vector<KernelInfo> list;
  for (DataType dtype : {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16, DataType::kBFloat16}) {
    for (Operation operation : {Operation::kSoftmax, Operation::kLogSoftmax, Operation::kSoftmaxTopk}) {
      list.push_back(info(dtype, operation, kChecked, checked_code(), Layout::kRows));
    }
  }
  for (int i = 0; i < kNumCpuTargets; ++i) {
    const CpuTarget& target = *cpu_targets()[i];
    const TargetKernels* k = target.kernels();
    if (k == nullptr) continue;
    add_row_kernels(k->f32, DataType::kFloat32, target, list);
    add_row_kernels(k->f64, DataType::kFloat64, target, list);
    add_row_kernels(k->f16, DataType::kFloat16, target, list);
    add_row_kernels(k->bf16, DataType::kBFloat16, target, list);
    if (k->f32_slices != nullptr) add_pass_kernels(target, Layout::kSplitRows, list);
    if (k->f32_columns != nullptr) add_pass_kernels(target, Layout::kColumns, list);
  }
  return list;
}

}  // namespace fastsoftmax
