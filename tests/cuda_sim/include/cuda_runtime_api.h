// The CUDA simulator's stand-in for <cuda_runtime_api.h> and the device built-ins: enough of
// them to compile cpp/src/cuda/execute.cu and kernels.cuh with the host compiler and run the
// kernels on the host, a std::thread per CUDA thread, one block at a time (so a kernel's
// __shared__ variables, static here, are its block's shared memory). Barriers stand for
// __syncthreads and for the warp shuffles and ballots of each group of lanes; the arithmetic is
// device_math.h's host build (the same functions). A test tool, not a CUDA emulator: no memory
// model, no timing, and it runs only code that keeps CUDA's rules (uniform barriers, whole groups
// in every shuffle).
#pragma once

#include <barrier>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#define FASTSOFTMAX_CUDA_SIM 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)

// ---- Runtime API: what execute.cu calls ------------------------------------------------------
enum cudaError_t { cudaSuccess = 0, cudaErrorMemoryAllocation = 2 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
using cudaStream_t = struct SimStream*;
inline const char* cudaGetErrorName(cudaError_t e) { return e == cudaSuccess ? "cudaSuccess" : "cudaErrorMemoryAllocation"; }
inline const char* cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "out of memory"; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaMallocAsync(void** p, std::size_t bytes, cudaStream_t) {
  *p = ::operator new(bytes == 0 ? 1 : bytes);
  std::memset(*p, 0xA5, bytes);  // garbage, as device memory would hold
  return cudaSuccess;
}
inline cudaError_t cudaFreeAsync(void* p, cudaStream_t) {
  ::operator delete(p);
  return cudaSuccess;
}
template <class F>
cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int) {
  return cudaSuccess;
}

// ---- Built-ins -------------------------------------------------------------------------------
struct SimDim3 {
  unsigned x = 1, y = 1, z = 1;
};
struct float4 {
  float x, y, z, w;
};

namespace fastsoftmax_sim {

inline thread_local SimDim3 thread_index;
inline SimDim3 block_index, block_dim, grid_dim;
inline std::unique_ptr<std::barrier<>> block_barrier;
inline std::vector<unsigned char> dynamic_shared_memory;

// The lanes of one warp: slots to exchange values through, a barrier per group (mask) of lanes.
struct Warp {
  std::mutex mutex;
  std::map<unsigned, std::unique_ptr<std::barrier<>>> barriers;
  std::uint64_t slots[32];
  std::barrier<>& barrier_for(unsigned mask) {
    std::lock_guard<std::mutex> lock(mutex);
    auto& b = barriers[mask];
    if (!b) b = std::make_unique<std::barrier<>>(__builtin_popcount(mask));
    return *b;
  }
};
inline std::vector<std::unique_ptr<Warp>> warps;

inline Warp& my_warp() { return *warps[thread_index.x / 32]; }

// Runs the kernel's blocks one after another, each with blockDim.x threads.
template <class Args>
void run_blocks(void (*kernel)(Args), unsigned grid, unsigned threads, std::size_t shared_bytes, const Args& args) {
  grid_dim = {grid, 1, 1};
  block_dim = {threads, 1, 1};
  dynamic_shared_memory.assign(shared_bytes + 16, 0xA5);
  for (unsigned b = 0; b < grid; ++b) {
    block_index = {b, 1, 1};
    block_barrier = std::make_unique<std::barrier<>>(threads);
    warps.clear();
    for (unsigned w = 0; w < (threads + 31) / 32; ++w) warps.push_back(std::make_unique<Warp>());
    std::vector<std::thread> team;
    team.reserve(threads);
    for (unsigned t = 0; t < threads; ++t) {
      team.emplace_back([&, t] {
        thread_index = {t, 1, 1};
        kernel(args);
      });
    }
    for (std::thread& thread : team) thread.join();
  }
}

inline unsigned char* dynamic_shared() {
  auto address = reinterpret_cast<std::uintptr_t>(dynamic_shared_memory.data());
  return dynamic_shared_memory.data() + ((16 - address % 16) % 16);
}

}  // namespace fastsoftmax_sim

#define threadIdx (::fastsoftmax_sim::thread_index)
#define blockIdx (::fastsoftmax_sim::block_index)
#define blockDim (::fastsoftmax_sim::block_dim)
#define gridDim (::fastsoftmax_sim::grid_dim)
#define FASTSOFTMAX_DYNAMIC_SHARED(name) unsigned char* name = ::fastsoftmax_sim::dynamic_shared()

inline void __syncthreads() { fastsoftmax_sim::block_barrier->arrive_and_wait(); }

template <class V>
V __shfl_xor_sync(unsigned mask, V value, int lane_mask, int width = 32) {
  static_assert(sizeof(V) <= 8, "shuffled values are at most 8 bytes");
  fastsoftmax_sim::Warp& warp = fastsoftmax_sim::my_warp();
  std::barrier<>& barrier = warp.barrier_for(mask);
  const int lane = static_cast<int>(threadIdx.x % 32);
  std::memcpy(&warp.slots[lane], &value, sizeof(V));
  barrier.arrive_and_wait();
  const int first = lane / width * width;
  const int source = first + ((lane - first) ^ lane_mask);
  V out;
  std::memcpy(&out, &warp.slots[source < first + width ? source : lane], sizeof(V));
  barrier.arrive_and_wait();
  return out;
}

inline unsigned __ballot_sync(unsigned mask, bool predicate) {
  fastsoftmax_sim::Warp& warp = fastsoftmax_sim::my_warp();
  std::barrier<>& barrier = warp.barrier_for(mask);
  const int lane = static_cast<int>(threadIdx.x % 32);
  warp.slots[lane] = predicate ? 1 : 0;
  barrier.arrive_and_wait();
  unsigned ballot = 0;
  for (int l = 0; l < 32; ++l) {
    if ((mask >> l) & 1u) ballot |= static_cast<unsigned>(warp.slots[l]) << l;
  }
  barrier.arrive_and_wait();
  return ballot;
}

template <class T>
T atomicAdd(T* address, T value) {
  return __atomic_fetch_add(address, value, __ATOMIC_SEQ_CST);
}
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline float __int_as_float(int v) {
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}
inline float __int_as_float(unsigned v) { return __int_as_float(static_cast<int>(v)); }
inline float __uint_as_float(unsigned v) { return __int_as_float(static_cast<int>(v)); }
inline unsigned __float_as_uint(float f) {
  unsigned v;
  std::memcpy(&v, &f, 4);
  return v;
}
inline void __stcs(float4* p, const float4& v) { *p = v; }

namespace fastsoftmax::cuda {
template <class Args>
void launch_kernel(void (*kernel)(Args), unsigned grid, unsigned threads, std::size_t shared_bytes, cudaStream_t,
                   const Args& args) {
  ::fastsoftmax_sim::run_blocks(kernel, grid, threads, shared_bytes, args);
}
}  // namespace fastsoftmax::cuda
