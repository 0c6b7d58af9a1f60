// The CUDA backend's executor: a planned call's kernels, by dtype, algorithm and family, enqueued
// on the caller's stream. The same shape as the CPU's: reduce to states, merge in a fixed order,
// write.
#include "cuda/execute.h"

#include <cuda_runtime_api.h>

#include <string>

#include "cuda/kernels.cuh"

namespace fastsoftmax::cuda {
namespace {

// The error text of a failed runtime call, or "" when it succeeded.
std::string failure(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return "";
  return std::string(what) + ": " + cudaGetErrorName(error) + " (" + cudaGetErrorString(error) + ")";
}

unsigned grid_of(const LaunchPlan& p) {
  constexpr std::int64_t kMaxGrid = 0x7fffffff;  // gridDim.x's limit: the kernels loop beyond it
  return static_cast<unsigned>(p.grid < kMaxGrid ? p.grid : kMaxGrid);
}

template <class T>
RowsArgs<T> rows_args(const Call& call, const LaunchPlan& p) {
  RowsArgs<T> a{};
  a.x = static_cast<const T*>(call.inputs[0].data);
  a.y = static_cast<T*>(const_cast<void*>(call.outputs[0].data));
  a.rows = static_cast<std::int64_t>(call.rows);
  a.n = static_cast<std::int64_t>(call.n);
  a.x_row_stride = call.inputs[0].row_stride;
  a.y_row_stride = call.outputs[0].row_stride;
  a.c = exp_constants(call.options.temperature);
  a.log = call.operation == Operation::kLogSoftmax;
  a.lanes = p.lanes;
  a.chunks = p.chunks;
  a.chunk_elements = p.chunk_elements;
  return a;
}

template <class T, Algorithm A>
std::string launch_warp_rows(const RowsArgs<T>& a, const LaunchPlan& p, cudaStream_t stream) {
  constexpr int P = Pack<T>::kSize;
  void (*kernel)(RowsArgs<T>) = nullptr;
  switch (p.columns) {
    case P: kernel = warp_rows_kernel<T, A, P>; break;
    case 2 * P: kernel = warp_rows_kernel<T, A, 2 * P>; break;
    case 4 * P: kernel = warp_rows_kernel<T, A, 4 * P>; break;
    default:
      if constexpr (8 * P <= kMaxWarpColumns) kernel = warp_rows_kernel<T, A, 8 * P>;
      break;
  }
  if (kernel == nullptr) return "no warp_rows_kernel for " + std::to_string(p.columns) + " columns";
  launch_kernel(kernel, grid_of(p), p.threads, 0, stream, a);
  return failure(cudaGetLastError(), "warp_rows_kernel launch");
}

template <class T, Algorithm A>
std::string launch_block_rows(const RowsArgs<T>& a, const LaunchPlan& p, cudaStream_t stream) {
  constexpr std::size_t kDefaultShared = 48 * 1024;  // more needs the kernel's opt-in
  if (p.shared_bytes + sizeof(RowState) * (kMaxBlockThreads / 32) > kDefaultShared) {  // static scratch too
    const std::string e = failure(cudaFuncSetAttribute(block_rows_kernel<T, A>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                       static_cast<int>(p.shared_bytes)),
                                  "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
    if (!e.empty()) return e;
  }
  launch_kernel(block_rows_kernel<T, A>, grid_of(p), p.threads, p.shared_bytes, stream, a);
  return failure(cudaGetLastError(), "block_rows_kernel launch");
}

template <class T, Algorithm A>
std::string launch_split_rows(RowsArgs<T> a, const LaunchPlan& p, cudaStream_t stream) {
  void* workspace = nullptr;
  std::string e = failure(cudaMallocAsync(&workspace, p.workspace_bytes, stream), "cudaMallocAsync (chunk states)");
  if (!e.empty()) return e;
  const std::int64_t units = a.rows * a.chunks;
  a.chunk_checked = static_cast<double*>(workspace);  // first: 8-byte aligned
  a.chunk_states = reinterpret_cast<RowState*>(a.chunk_checked + units);
  a.chunk_maxima = a.chunk_states + units;  // only three-pass plans allocate (and use) it
  const unsigned grid = grid_of(p);
  if constexpr (A == Algorithm::kThreePassRecompute || A == Algorithm::kThreePassReload) {
    launch_kernel(split_state_kernel<T, A, SplitPass::kMaxima>, grid, p.threads, 0, stream, a);
  }
  launch_kernel(split_state_kernel<T, A, SplitPass::kSums>, grid, p.threads, 0, stream, a);
  launch_kernel(split_write_kernel<T, A>, grid, p.threads, 0, stream, a);
  e = failure(cudaGetLastError(), "split rows kernel launch");
  const std::string freed = failure(cudaFreeAsync(workspace, stream), "cudaFreeAsync (chunk states)");
  return e.empty() ? freed : e;
}

template <class T, Algorithm A>
std::string launch_rows(const Call& call, const LaunchPlan& p, cudaStream_t stream) {
  const RowsArgs<T> a = rows_args<T>(call, p);
  switch (p.family) {
    case Family::kWarpRows: return launch_warp_rows<T, A>(a, p, stream);
    case Family::kBlockRows: return launch_block_rows<T, A>(a, p, stream);
    default: return launch_split_rows<T, A>(a, p, stream);
  }
}

template <class T>
std::string launch_topk(const Call& call, const LaunchPlan& p, cudaStream_t stream) {
  TopkArgs<T> a{};
  a.x = static_cast<const T*>(call.inputs[0].data);
  a.values = static_cast<T*>(const_cast<void*>(call.outputs[0].data));
  a.indices = static_cast<std::int64_t*>(const_cast<void*>(call.outputs[1].data));
  a.rows = static_cast<std::int64_t>(call.rows);
  a.n = static_cast<std::int64_t>(call.n);
  a.x_row_stride = call.inputs[0].row_stride;
  a.out_row_stride = call.outputs[0].row_stride;
  a.out_stride = call.outputs[0].stride;
  a.index_row_stride = call.outputs[1].row_stride;
  a.index_stride = call.outputs[1].stride;
  a.k = static_cast<int>(call.k);
  a.c = exp_constants(call.options.temperature);
  if (p.family == Family::kTopkRows) {
    launch_kernel(topk_rows_kernel<T>, grid_of(p), p.threads, 0, stream, a);
    return failure(cudaGetLastError(), "topk_rows_kernel launch");
  }
  a.chunks = p.chunks;
  a.chunk_elements = p.chunk_elements;
  void* workspace = nullptr;
  std::string e = failure(cudaMallocAsync(&workspace, p.workspace_bytes, stream), "cudaMallocAsync (top-k chunks)");
  if (!e.empty()) return e;
  // 8-byte fields first: checked parts, candidate indices; then the states and the keys.
  const std::int64_t units = a.rows * a.chunks;
  a.chunk_checked = static_cast<double*>(workspace);
  a.chunk_indices = reinterpret_cast<std::int64_t*>(a.chunk_checked + units);
  a.chunk_states = reinterpret_cast<RowState*>(a.chunk_indices + units * a.k);
  a.chunk_keys = reinterpret_cast<unsigned*>(a.chunk_states + units);
  launch_kernel(split_topk_kernel<T>, grid_of(p), p.threads, 0, stream, a);
  const unsigned rows_grid = static_cast<unsigned>(a.rows < p.grid ? a.rows : p.grid);
  launch_kernel(topk_merge_kernel<T>, rows_grid, p.threads, 0, stream, a);
  e = failure(cudaGetLastError(), "split top-k kernel launch");
  const std::string freed = failure(cudaFreeAsync(workspace, stream), "cudaFreeAsync (top-k chunks)");
  return e.empty() ? freed : e;
}

template <class T>
std::string launch_typed(const Call& call, const LaunchPlan& p, cudaStream_t stream) {
  if (p.family == Family::kTopkRows || p.family == Family::kTopkSplitRows) return launch_topk<T>(call, p, stream);
  switch (p.algorithm) {
    case Algorithm::kTwoPass: return launch_rows<T, Algorithm::kTwoPass>(call, p, stream);
    case Algorithm::kThreePassReload: return launch_rows<T, Algorithm::kThreePassReload>(call, p, stream);
    case Algorithm::kThreePassRecompute: return launch_rows<T, Algorithm::kThreePassRecompute>(call, p, stream);
    default: return launch_rows<T, Algorithm::kOnline>(call, p, stream);
  }
}

}  // namespace

std::string execute_on_device(const Call& call, const LaunchPlan& plan, cudaStream_t stream) {
  switch (call.dtype) {
    case DataType::kFloat32: return launch_typed<float>(call, plan, stream);
    case DataType::kFloat16: return launch_typed<Half>(call, plan, stream);
    default: return launch_typed<Bf16>(call, plan, stream);
  }
}

}  // namespace fastsoftmax::cuda
