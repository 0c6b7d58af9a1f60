// fastsoftmax's CUDA backend: softmax, log-softmax and fused softmax + top-k on device memory.
//
// A separate header (and library target, fastsoftmax::fastsoftmax_cuda) so that CPU-only users
// need no CUDA headers. The same Call, validation, special-value rules, algorithms and
// explain() as the CPU functions of fastsoftmax.h (docs/architecture.md, "The CUDA backend"):
//   - pointers are device pointers (or managed memory) of the current device;
//   - the elements of a row are adjacent (x_stride = y_stride = 1); rows may have any stride;
//   - float32, float16 and bfloat16, computed in float32; float64 is refused (kDeviceDtype),
//     never copied to the host; a host pointer is refused (kDeviceHostMemory);
//   - work is enqueued on `stream` and the functions return without waiting for it. Argument
//     errors are found before anything is enqueued (nothing is written); a failure of the CUDA
//     runtime (no device, a failed launch) returns kDeviceError and last_error() names it.
// Thread-safe: calls from several host threads, on any streams, need no locking.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fastsoftmax/fastsoftmax.h"

namespace fastsoftmax::cuda {

// Whether device calls can run here: a CUDA driver and at least one device. If not, `reason`
// (when given) says why (e.g. "no CUDA driver: cudaGetDeviceCount returned ...").
bool available(std::string* reason = nullptr);

// The backend as an implementation (name "cuda", backend "cuda"), and its kernels.
ImplementationInfo implementation();
std::vector<KernelInfo> kernels();

Status softmax(const float* x, float* y, const RowLayout& layout, const Options& options = {},
               cudaStream_t stream = nullptr);
Status softmax(const Float16* x, Float16* y, const RowLayout& layout, const Options& options = {},
               cudaStream_t stream = nullptr);
Status softmax(const BFloat16* x, BFloat16* y, const RowLayout& layout, const Options& options = {},
               cudaStream_t stream = nullptr);
Status log_softmax(const float* x, float* y, const RowLayout& layout, const Options& options = {},
                   cudaStream_t stream = nullptr);
Status log_softmax(const Float16* x, Float16* y, const RowLayout& layout, const Options& options = {},
                   cudaStream_t stream = nullptr);
Status log_softmax(const BFloat16* x, BFloat16* y, const RowLayout& layout, const Options& options = {},
                   cudaStream_t stream = nullptr);
// As fastsoftmax::softmax_topk (ties to the lower index; the softmax is never written), with
// 1 <= k <= min(n, kMaxTopk).
constexpr std::int64_t kMaxTopk = 1024;
Status softmax_topk(const float* x, float* values, std::int64_t* indices, const RowLayout& layout, std::size_t k,
                    bool sorted = true, const Options& options = {}, cudaStream_t stream = nullptr);
Status softmax_topk(const Float16* x, Float16* values, std::int64_t* indices, const RowLayout& layout,
                    std::size_t k, bool sorted = true, const Options& options = {}, cudaStream_t stream = nullptr);
Status softmax_topk(const BFloat16* x, BFloat16* values, std::int64_t* indices, const RowLayout& layout,
                    std::size_t k, bool sorted = true, const Options& options = {}, cudaStream_t stream = nullptr);

// The generic call on the device (the typed functions are this).
Status run(const Call& call, cudaStream_t stream = nullptr);
// What a device call would run on the current device, and why: the kernel family (warp, block or
// split rows), the grid and the chunking. With no device, the plan for a reference device (an
// H100 SXM's limits), said so in the reasons.
Explanation explain(const Call& call);

// The message of this thread's last kDeviceError (empty if none).
std::string last_error();

}  // namespace fastsoftmax::cuda
