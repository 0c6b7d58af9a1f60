// Internal, for the benchmarks only (bench/softmax_bench.cc and the Python bench's bound): not
// part of the installed API.
#pragma once

#include <cstddef>

#include "fastsoftmax/fastsoftmax.h"

namespace fastsoftmax {

// A speed bound for softmax, not a softmax: reads x twice (a max, then a scaling) and writes y
// once with trivial arithmetic, using the kernels' own loads, stores and unrolling on `isa`. The
// memory traffic of two-pass and online (8 bytes read and 4 written per element).
Status read_twice_write_once(const float* x, float* y, std::size_t n, Isa isa = Isa::kAuto);

}  // namespace fastsoftmax
