// Internal: how a device call runs (the CUDA backend's part of the selection policy): the kernel
// family by row length and batch, the algorithm, the grid and the chunking, each with its reason.
// Plain host C++ (no CUDA headers): unit-tested on machines without a GPU, with any device's
// limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fastsoftmax/fastsoftmax.h"

namespace fastsoftmax::cuda {

// Block sizes of the kernels (kernels.cuh uses them in __launch_bounds__).
constexpr int kWarpRowsThreads = 128;  // warp rows: 4 warps a block
constexpr int kMaxBlockThreads = 512;  // 128 registers a thread: no spills
constexpr int kSplitThreads = 256;
constexpr int kTopkThreads = 256;
constexpr int kTopkCapacity = 1024;  // candidates in shared memory: the largest k (cuda.h's kMaxTopk)
// Warp rows keep up to this many floats of the row per thread in registers.
constexpr int kMaxWarpColumns = 32;

// What the planner needs of a device.
struct DeviceLimits {
  std::string name;
  int sm_count = 0;
  int max_threads_per_sm = 0;
  std::size_t max_shared_per_block = 0;  // dynamic shared memory a block may opt in to
  std::size_t shared_per_sm = 0;
  bool reference = false;  // not a device of this machine: reference_device()
};
// An H100 SXM's limits: the plan explain() gives where there is no device.
DeviceLimits reference_device();

enum class Family {
  kWarpRows,   // a row per warp (or 1..16 lanes of one), held in registers
  kBlockRows,  // a row per block, cached in shared memory in its own type
  kSplitRows,  // each row cut into chunks, a block per chunk; states merged in chunk order
  kTopkRows,   // softmax_topk: a row per block, radix select
  kTopkSplitRows,  // softmax_topk of few long rows: chunks select their own k, a block per row merges
};
// "warp rows", "block rows", "split rows", "top-k rows", "split top-k rows"
const char* family_name(Family family);

struct LaunchPlan {
  Family family = Family::kWarpRows;
  Algorithm algorithm = Algorithm::kAuto;  // never kAuto once planned
  int threads = 0;                         // per block
  std::int64_t grid = 0;                   // blocks (the kernels loop over rows or chunks beyond it)
  int lanes = 0;                           // warp rows: threads per row
  int columns = 0;                         // warp rows: elements per thread (kernel template)
  std::int64_t chunks = 1;                 // split rows: chunks per row
  std::int64_t chunk_elements = 0;         // split rows
  std::size_t shared_bytes = 0;            // dynamic shared memory per block
  std::size_t workspace_bytes = 0;         // split rows: the chunk states
  std::string kernel;                      // the catalogue name
  std::string family_reason, algorithm_reason, grid_reason;
};

// The plan of a call that validate_device() accepted, on `device`. Reads only the operands'
// addresses (their alignment), never their data.
LaunchPlan plan_launch(const Call& call, const DeviceLimits& device);

// Every CUDA kernel variant, as the catalogue lists them.
std::vector<KernelInfo> catalogue();

}  // namespace fastsoftmax::cuda
