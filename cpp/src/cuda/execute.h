// Internal: runs a planned device call (kernels enqueued on the stream, nothing awaited).
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "cuda/launch_plan.h"

namespace fastsoftmax::cuda {

// "" when every kernel was enqueued; else what the CUDA runtime said.
std::string execute_on_device(const Call& call, const LaunchPlan& plan, cudaStream_t stream);

}  // namespace fastsoftmax::cuda
