// Internal: the CPU backend runs a planned call (execute.cc).
#pragma once

#include "fastsoftmax/fastsoftmax.h"
#include "plan.h"

namespace fastsoftmax {

// Runs `call` as `plan` says (plan.problem == kNone, rows and n > 0).
void execute_on_cpu(const Call& call, const Plan& plan);

}  // namespace fastsoftmax
