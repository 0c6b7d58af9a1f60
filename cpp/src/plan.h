// Internal: the one place that decides how a call runs (the selection policy): which
// implementation, whose kernels, which algorithm, which schedule, how many threads, and why.
#pragma once

#include <cstddef>

#include "cpu/targets.h"
#include "fastsoftmax/fastsoftmax.h"
#include "kernels/kernel_types.h"
#include "validate.h"

namespace fastsoftmax {

enum class Schedule {
  kOneElement,  // n == 1: the checked path gives exactly 1 (log: 0) or NaN
  kRows,        // whole rows, shared out among the threads in runs
  kColumns,     // blocks of adjacent columns (a softmax along a strided axis), one softmax per lane
  kSplitRows,   // every row split into slices across the threads, their states merged
  kShortRows,   // blocks of short rows transposed into column blocks, one row per lane
};
const char* schedule_name(Schedule schedule);

struct Plan {
  Status status = Status::kOk;  // the call is refused unless kOk (then nothing else is set)
  const CpuTarget* implementation = nullptr;  // asked for, or chosen for Isa::kAuto
  const CpuTarget* kernel_target = nullptr;   // whose kernels run: the implementation's, or a lower target's
  Algorithm algorithm = Algorithm::kAuto;     // never kAuto once planned
  Schedule schedule = Schedule::kRows;
  std::size_t threads = 1;  // asked of the thread team (a call may still get fewer)
  Temperature temperature = kNoTemperature;
  // Why each choice (static text, for explain()).
  const char* implementation_reason = "";
  const char* kernel_reason = "";
  const char* algorithm_reason = "";
  const char* schedule_reason = "";
  const char* threads_reason = "";
};

// Validates the call and plans it. Reads nothing of its data.
Plan plan(const Call& call);

// Whether a topk_softmax call is softmax_topk's (softmax scores, no bias, no groups, float32 or
// float64 logits, whose probabilities keep float32's precision): it is then planned and run as
// softmax_topk's fused pass, and its weights made from the k results.
inline bool router_runs_topk(const Call& call) {
  return call.operation == Operation::kTopkSoftmax && call.router.scoring == Scoring::kSoftmax &&
         call.inputs[1].data == nullptr && call.router.groups == 0 &&
         (call.dtype == DataType::kFloat32 || call.dtype == DataType::kFloat64);
}

}  // namespace fastsoftmax
