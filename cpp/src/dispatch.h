// Internal: kernel selection (implemented in dispatch.cc).
#pragma once

#include "kernels.h"

namespace fastsoftmax {

// The kernel table for `requested` (kAuto resolved as auto_isa does), and the ISA it resolved to.
// kUnsupportedIsa if that ISA is not compiled in or this CPU lacks it.
Status select_kernels(Isa requested, const IsaKernels** kernels, Isa* resolved);

}  // namespace fastsoftmax
