// Internal: the kernel catalogue. Every kernel variant has one name (fastsoftmax.h, KernelInfo),
// made here from its fields; explain() names the kernel a plan runs with the same function.
#pragma once

#include <string>

#include "fastsoftmax/fastsoftmax.h"
#include "plan.h"

namespace fastsoftmax {

// <dtype>-<operation>-<algorithm>-<target>-<exp method>-<tile>: the one name maker, for every
// backend's kernels.
std::string catalogue_name(DataType dtype, Operation operation, const char* algorithm, const char* target,
                           const char* exp_method, const std::string& tile);

// The catalogue name of the CPU kernel that `plan` runs for `call`.
std::string planned_kernel_name(const Call& call, const Plan& plan);

}  // namespace fastsoftmax
