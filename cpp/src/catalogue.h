// Internal: the kernel catalogue. Every kernel variant has one name (fastsoftmax.h, KernelInfo),
// made here from its fields; explain() names the kernel a plan runs with the same function.
#pragma once

#include <string>

#include "fastsoftmax/fastsoftmax.h"
#include "plan.h"

namespace fastsoftmax {

// The catalogue name of the kernel that `plan` runs for `call`.
std::string planned_kernel_name(const Call& call, const Plan& plan);

}  // namespace fastsoftmax
