// The CUDA backend's selection policy: family, algorithm, grid and chunking, with reasons.
#include "cuda/launch_plan.h"

#include <algorithm>
#include <cstdint>

#include "catalogue.h"
#include "cuda/device_math.h"

namespace fastsoftmax::cuda {
namespace {

std::int64_t round_up(std::int64_t value, std::int64_t step) { return (value + step - 1) / step * step; }
int next_power_of_two(std::int64_t value) {
  int p = 1;
  while (p < value) p *= 2;
  return p;
}
std::size_t element_bytes(DataType dtype) { return dtype == DataType::kFloat32 ? 4 : 2; }

// Rows whose every start is 16-byte aligned need no slot for a misaligned start.
bool rows_aligned(const Operand& x, std::size_t rows, std::size_t bytes) {
  const auto address = reinterpret_cast<std::uintptr_t>(x.data);
  return address % 16 == 0 && (rows == 1 || (static_cast<std::uint64_t>(x.row_stride) * bytes) % 16 == 0);
}

// Split rows: chunk lengths depend on n alone, never on the device or the grid, so the merged
// states, and the results, are the same bits on every GPU: about 128 chunks of 2K..32K elements.
constexpr std::int64_t kChunkStep = 2048;
constexpr std::int64_t kMaxChunk = 32768;
constexpr std::int64_t kTargetChunks = 128;

// Batches below this fraction of the SMs leave most SMs idle with a block per row.
constexpr int kFewRowsDivisor = 2;
// Shared memory a block-rows kernel uses besides the row cache (its reduction scratch), rounded up.
constexpr std::size_t kStaticSharedBytes = 1024;

const char* tile_of(const LaunchPlan& p, std::string* storage) {
  switch (p.family) {
    case Family::kWarpRows: *storage = "warp-c" + std::to_string(p.columns); break;
    case Family::kBlockRows: *storage = "block"; break;
    case Family::kSplitRows: *storage = "split"; break;
    case Family::kTopkRows: *storage = "radix"; break;
    case Family::kTopkSplitRows: *storage = "radix-split"; break;
  }
  return storage->c_str();
}

std::string kernel_name(DataType dtype, Operation operation, Algorithm algorithm, const LaunchPlan& p) {
  std::string tile;
  tile_of(p, &tile);
  return catalogue_name(dtype, operation, algorithm_name(algorithm), "cuda", kExpMethod, tile);
}

Algorithm auto_algorithm(const Call& call, Family family, std::string* reason) {
  if (call.operation == Operation::kSoftmaxTopk) {
    *reason = "softmax_topk runs the online normalizer fused with the selection's first pass";
    return Algorithm::kOnline;
  }
  if (family == Family::kSplitRows) {
    *reason = "split rows: two_pass reads each chunk twice (states, then outputs), three-pass three times";
    return Algorithm::kTwoPass;
  }
  if (call.operation == Operation::kLogSoftmax) {
    *reason = "the row is on chip: three_pass_recompute finds the exact maximum, then one exp per element";
    return Algorithm::kThreePassRecompute;
  }
  if (call.dtype != DataType::kFloat32) {
    *reason = "16-bit outputs: three_pass_recompute (three_pass_reload would round its stored terms to 16 bits)";
    return Algorithm::kThreePassRecompute;
  }
  *reason = "the row is on chip: three_pass_reload computes each exp once and rescales the stored terms";
  return Algorithm::kThreePassReload;
}

}  // namespace

DeviceLimits reference_device() {
  DeviceLimits d;
  d.name = "NVIDIA H100 80GB HBM3 (reference limits, no device here)";
  d.sm_count = 132;
  d.max_threads_per_sm = 2048;
  d.max_shared_per_block = 227 * 1024;
  d.shared_per_sm = 228 * 1024;
  d.reference = true;
  return d;
}

const char* family_name(Family family) {
  switch (family) {
    case Family::kWarpRows: return "warp rows";
    case Family::kBlockRows: return "block rows";
    case Family::kSplitRows: return "split rows";
    case Family::kTopkRows: return "top-k rows";
    case Family::kTopkSplitRows: return "split top-k rows";
  }
  return "unknown";
}

LaunchPlan plan_launch(const Call& call, const DeviceLimits& device) {
  LaunchPlan p;
  const std::int64_t rows = static_cast<std::int64_t>(call.rows);
  const std::int64_t n = static_cast<std::int64_t>(call.n);
  const std::size_t bytes = element_bytes(call.dtype);
  const int pack = static_cast<int>(16 / bytes);
  const std::int64_t resident_threads = std::int64_t{device.sm_count} * device.max_threads_per_sm;
  // Slots a row needs in registers or shared memory: one vector more where starts are misaligned.
  const std::int64_t slots = rows_aligned(call.inputs[0], call.rows, bytes) ? n : n + pack - 1;
  const std::size_t cache_bytes = static_cast<std::size_t>(round_up(n + pack, pack)) * bytes;
  const std::string shape = std::to_string(rows) + " x " + std::to_string(n) + " " + dtype_name(call.dtype);

  const std::int64_t chunk_elements =
      std::clamp<std::int64_t>(round_up((n + kTargetChunks - 1) / kTargetChunks, kChunkStep), kChunkStep, kMaxChunk);
  if (call.operation == Operation::kSoftmaxTopk && rows * kFewRowsDivisor < device.sm_count && n > 2 * chunk_elements) {
    p.family = Family::kTopkSplitRows;
    p.threads = kTopkThreads;
    p.chunk_elements = chunk_elements;
    p.chunks = (n + p.chunk_elements - 1) / p.chunk_elements;
    p.family_reason = "softmax_topk, " + shape + ": fewer rows than half the " + std::to_string(device.sm_count) +
                      " SMs, so each row is cut into " + std::to_string(p.chunks) + " chunks of " +
                      std::to_string(p.chunk_elements) +
                      " elements; a block per chunk finds its state and its k best (radix select), a block per "
                      "row merges them in chunk order";
  } else if (call.operation == Operation::kSoftmaxTopk) {
    p.family = Family::kTopkRows;
    p.threads = kTopkThreads;
    p.family_reason = "softmax_topk: a block per row finds the k-th largest key by radix select (" +
                      std::to_string(kTopkCapacity) + " candidates at most, in shared memory)";
  } else if (slots <= std::int64_t{32} * kMaxWarpColumns) {
    p.family = Family::kWarpRows;
    p.threads = kWarpRowsThreads;
    if (slots <= std::int64_t{32} * pack) {
      p.columns = pack;
      p.lanes = next_power_of_two((slots + pack - 1) / pack);
    } else {
      p.lanes = 32;
      p.columns = next_power_of_two((slots + 31) / 32);
    }
    p.family_reason = shape + ": a row fits in the registers of " + std::to_string(p.lanes) + " lanes x " +
                      std::to_string(p.columns) + " elements (up to " + std::to_string(32 * kMaxWarpColumns) +
                      " a warp)";
  } else if (rows * kFewRowsDivisor >= device.sm_count && cache_bytes + kStaticSharedBytes <= device.max_shared_per_block) {
    p.family = Family::kBlockRows;
    p.threads = static_cast<int>(std::clamp<std::int64_t>(next_power_of_two(n / (pack * 4)), 128, kMaxBlockThreads));
    p.shared_bytes = cache_bytes;
    p.family_reason = shape + ": a row (" + std::to_string(cache_bytes) +
                      " bytes) fits in a block's shared memory (" + std::to_string(device.max_shared_per_block) +
                      ") and the batch fills the SMs: one read of global memory";
  } else {
    p.family = Family::kSplitRows;
    p.threads = kSplitThreads;
    p.chunk_elements = chunk_elements;
    p.chunks = (n + p.chunk_elements - 1) / p.chunk_elements;
    p.family_reason = shape + ": " +
                      (cache_bytes + kStaticSharedBytes > device.max_shared_per_block
                           ? "a row is larger than a block's shared memory"
                           : "fewer rows than half the " + std::to_string(device.sm_count) + " SMs") +
                      ", so each row is cut into " + std::to_string(p.chunks) + " chunks of " +
                      std::to_string(p.chunk_elements) +
                      " elements, their states merged in chunk order (the same bits on any grid)";
  }

  if (call.options.algorithm == Algorithm::kAuto) {
    p.algorithm = auto_algorithm(call, p.family, &p.algorithm_reason);
  } else {
    p.algorithm = call.options.algorithm;
    p.algorithm_reason = "asked for";
  }

  // Grids: what fits on the device at once (the kernels loop over the rest), at most the work.
  const std::int64_t resident_blocks = std::max<std::int64_t>(1, resident_threads / p.threads);
  switch (p.family) {
    case Family::kWarpRows: {
      const std::int64_t rows_per_block = p.threads / p.lanes;
      p.grid = std::min((rows + rows_per_block - 1) / rows_per_block, resident_blocks);
      p.grid_reason = std::to_string(p.grid) + " blocks of " + std::to_string(p.threads) + " threads, " +
                      std::to_string(rows_per_block) + " rows a block at a time (persistent: at most the " +
                      std::to_string(resident_blocks) + " blocks resident at once)";
      break;
    }
    case Family::kBlockRows: {
      const std::int64_t by_shared = std::max<std::size_t>(1, device.shared_per_sm / (p.shared_bytes + kStaticSharedBytes));
      const std::int64_t per_sm = std::min<std::int64_t>(device.max_threads_per_sm / p.threads, by_shared);
      p.grid = std::min(rows, per_sm * device.sm_count);
      p.grid_reason = std::to_string(p.grid) + " blocks of " + std::to_string(p.threads) + " threads, " +
                      std::to_string(p.shared_bytes) + " bytes of shared memory each (" + std::to_string(per_sm) +
                      " a SM)";
      break;
    }
    case Family::kSplitRows: {
      const std::int64_t units = rows * p.chunks;
      p.grid = std::min(units, resident_blocks);
      const bool three_pass =
          p.algorithm == Algorithm::kThreePassRecompute || p.algorithm == Algorithm::kThreePassReload;
      p.workspace_bytes = static_cast<std::size_t>(units) * (sizeof(RowState) * (three_pass ? 2 : 1) + sizeof(double));
      p.grid_reason = std::to_string(p.grid) + " blocks of " + std::to_string(p.threads) + " threads over " +
                      std::to_string(units) + " chunks; " + (three_pass ? "3" : "2") +
                      " kernels (chunk " + (three_pass ? "maxima, then sums" : "states") +
                      ", then merge and write), " + std::to_string(p.workspace_bytes) +
                      " bytes of chunk states";
      break;
    }
    case Family::kTopkRows: {
      p.grid = std::min(rows, resident_blocks);
      p.grid_reason = std::to_string(p.grid) + " blocks of " + std::to_string(p.threads) + " threads, a row each";
      break;
    }
    case Family::kTopkSplitRows: {
      const std::int64_t units = rows * p.chunks;
      p.grid = std::min(units, resident_blocks);
      // Per chunk: its state, its checked part, k candidate keys and indices.
      p.workspace_bytes = static_cast<std::size_t>(units) *
                          (sizeof(RowState) + sizeof(double) + static_cast<std::size_t>(call.k) * (4 + 8));
      p.grid_reason = std::to_string(p.grid) + " blocks of " + std::to_string(p.threads) + " threads over " +
                      std::to_string(units) + " chunks, then " + std::to_string(rows) + " merging blocks; " +
                      std::to_string(p.workspace_bytes) + " bytes of chunk states and candidates";
      break;
    }
  }
  if (device.reference) p.grid_reason += " [planned for " + device.name + "]";
  p.kernel = kernel_name(call.dtype, call.operation, p.algorithm, p);
  return p;
}

std::vector<KernelInfo> catalogue() {
  std::vector<KernelInfo> list;
  const Algorithm algorithms[] = {Algorithm::kTwoPass, Algorithm::kThreePassReload, Algorithm::kThreePassRecompute,
                                  Algorithm::kOnline};
  for (DataType dtype : {DataType::kFloat32, DataType::kFloat16, DataType::kBFloat16}) {
    const int pack = static_cast<int>(16 / element_bytes(dtype));
    std::vector<LaunchPlan> tiles;
    for (int columns = pack; columns <= kMaxWarpColumns; columns *= 2) {
      LaunchPlan warp;
      warp.family = Family::kWarpRows;
      warp.columns = columns;
      tiles.push_back(warp);
    }
    for (Family family : {Family::kBlockRows, Family::kSplitRows}) {
      LaunchPlan p;
      p.family = family;
      tiles.push_back(p);
    }
    for (Operation operation : {Operation::kSoftmax, Operation::kLogSoftmax}) {
      for (Algorithm algorithm : algorithms) {
        for (const LaunchPlan& tile : tiles) {
          list.push_back({kernel_name(dtype, operation, algorithm, tile), dtype, operation, algorithm_name(algorithm),
                          Isa::kAuto, family_name(tile.family), "cuda"});
        }
      }
    }
    for (Family family : {Family::kTopkRows, Family::kTopkSplitRows}) {
      LaunchPlan topk;
      topk.family = family;
      list.push_back({kernel_name(dtype, Operation::kSoftmaxTopk, Algorithm::kOnline, topk), dtype,
                      Operation::kSoftmaxTopk, algorithm_name(Algorithm::kOnline), Isa::kAuto, family_name(family),
                      "cuda"});
    }
  }
  return list;
}

}  // namespace fastsoftmax::cuda
