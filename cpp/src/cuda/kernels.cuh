// The CUDA kernels: three families of row kernels (warp rows, block rows, split rows) for the four
// algorithms, and the fused softmax + top-k. Written once over the element type T (float, Half,
// Bf16) and the algorithm; the arithmetic is device_math.h's. Included by kernels.cu only.
//
// Memory: rows are read with 16-byte loads. A row whose start is not 16-byte aligned is read
// through "slots": slot s holds element s - offset, where offset is the start's misalignment in
// elements, so that every full group of kPack slots is one aligned vector; the partial groups at
// either end are read element by element (the scalar prologue and epilogue). Outputs are stored
// the same way when their misalignment equals the input's, element by element otherwise.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "cuda/device_math.h"
#include "cuda/launch_plan.h"

// The dynamic shared memory of a kernel, and a kernel launch. tests/cuda_sim/ defines both to run
// these kernels on the host (threads for CUDA threads) where there is no GPU.
#if !defined(FASTSOFTMAX_CUDA_SIM)
#define FASTSOFTMAX_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif

namespace fastsoftmax::cuda {

#if !defined(FASTSOFTMAX_CUDA_SIM)
template <class Args>
void launch_kernel(void (*kernel)(Args), unsigned grid, unsigned threads, std::size_t shared_bytes,
                   cudaStream_t stream, const Args& args) {
  kernel<<<grid, threads, shared_bytes, stream>>>(args);
}
#endif

constexpr unsigned kFullMask = 0xffffffffu;

template <class T>
struct Pack {
  static constexpr int kSize = 16 / sizeof(T);  // elements per 16-byte vector
};

// ---- Vector access ---------------------------------------------------------------------------

template <class T>
struct alignas(16) Vec {
  T v[Pack<T>::kSize];
};

template <class T>
__device__ __forceinline__ void load_vector(const T* p, float* out) {
  const Vec<T> vec = *reinterpret_cast<const Vec<T>*>(p);
#pragma unroll
  for (int i = 0; i < Pack<T>::kSize; ++i) out[i] = to_float(vec.v[i]);
}
template <class T, bool kStreaming>
__device__ __forceinline__ void store_vector(T* p, const float* in) {
  Vec<T> vec;
#pragma unroll
  for (int i = 0; i < Pack<T>::kSize; ++i) vec.v[i] = from_float<T>(in[i]);
  if constexpr (kStreaming) {
    __stcs(reinterpret_cast<float4*>(p), *reinterpret_cast<const float4*>(&vec));
  } else {
    *reinterpret_cast<Vec<T>*>(p) = vec;
  }
}

// The misalignment of p in elements (0 .. kPack - 1).
template <class T>
__device__ __forceinline__ int misalignment(const T* p) {
  return static_cast<int>((reinterpret_cast<std::uintptr_t>(p) % 16) / sizeof(T));
}

// Where a row is read from: global memory, or its copy in shared memory (element i at slot
// i + offset of the cache, so that the cache's aligned vectors are x's).
template <class T>
struct GlobalRow {
  const T* x;
  __device__ void load(std::int64_t i, float* v) const { load_vector(x + i, v); }
  __device__ float at(std::int64_t i) const { return to_float(x[i]); }
};
template <class T>
struct SharedRow {
  const T* cache;
  int offset;
  __device__ void load(std::int64_t i, float* v) const { load_vector(cache + i + offset, v); }
  __device__ float at(std::int64_t i) const { return to_float(cache[i + offset]); }
};

// The aligned part [body, body_end) of [begin, end) for a row whose start is `offset` elements
// past a 16-byte boundary: the vectors; the elements before and after are the scalar ends.
struct Span {
  std::int64_t begin, body, body_end, end;
};
template <class T>
__device__ __forceinline__ Span span_of(int offset, std::int64_t begin, std::int64_t end) {
  constexpr int P = Pack<T>::kSize;
  std::int64_t body = begin + ((P - (offset + begin) % P) % P);
  if (body > end) body = end;
  return {begin, body, body + (end - body) / P * P, end};
}

// Calls f(i, value) for the elements i in [begin, end) of a row, the threads of a group (rank,
// size) sharing its aligned vectors and its scalar ends. Each thread sees its elements in a fixed
// order: results never depend on timing.
template <class T, class Row, class F>
__device__ __forceinline__ void for_each_element(const Row& row, int offset, std::int64_t begin, std::int64_t end,
                                                 int rank, int size, F&& f) {
  constexpr int P = Pack<T>::kSize;
  const Span sp = span_of<T>(offset, begin, end);
  for (std::int64_t i = sp.begin + rank; i < sp.body; i += size) f(i, row.at(i));
  for (std::int64_t i = sp.body + std::int64_t{rank} * P; i < sp.body_end; i += std::int64_t{size} * P) {
    float v[P];
    row.load(i, v);
#pragma unroll
    for (int j = 0; j < P; ++j) f(i + j, v[j]);
  }
  for (std::int64_t i = sp.body_end + rank; i < sp.end; i += size) f(i, row.at(i));
}

// Writes y[i] = g(i, x_i) for i in [begin, end), reading x_i as for_each_element does; y is
// stored with vectors where its misalignment equals x's (offset), element by element otherwise.
template <class T, bool kStreaming, class Row, class G>
__device__ __forceinline__ void write_elements(const Row& row, int offset, T* y, std::int64_t begin, std::int64_t end,
                                               int rank, int size, G&& g) {
  constexpr int P = Pack<T>::kSize;
  const bool vector_y = misalignment(y) == offset;
  const Span sp = span_of<T>(offset, begin, end);
  for (std::int64_t i = sp.begin + rank; i < sp.body; i += size) y[i] = from_float<T>(g(i, row.at(i)));
  for (std::int64_t i = sp.body + std::int64_t{rank} * P; i < sp.body_end; i += std::int64_t{size} * P) {
    float v[P];
    row.load(i, v);
#pragma unroll
    for (int j = 0; j < P; ++j) v[j] = g(i + j, v[j]);
    if (vector_y) {
      store_vector<T, kStreaming>(y + i, v);
    } else {
#pragma unroll
      for (int j = 0; j < P; ++j) y[i + j] = from_float<T>(v[j]);
    }
  }
  for (std::int64_t i = sp.body_end + rank; i < sp.end; i += size) y[i] = from_float<T>(g(i, row.at(i)));
}

// ---- Group reductions ------------------------------------------------------------------------

// A warp, or a power-of-two part of one, working on one row.
struct WarpGroup {
  int lanes;      // 1..32
  int rank;       // lane within the group
  unsigned mask;  // the group's lanes within the warp

  __device__ int size() const { return lanes; }
  __device__ static WarpGroup of_lanes(int lanes) {
    const int lane = threadIdx.x % 32;
    const int first = lane / lanes * lanes;
    const unsigned mask = lanes == 32 ? kFullMask : (((1u << lanes) - 1u) << first);
    return {lanes, lane - first, mask};
  }
  // A butterfly: every lane ends with the same value (merge and + are symmetric).
  __device__ RowState reduce(RowState s) const {
    for (int o = lanes / 2; o > 0; o /= 2) {
      RowState other;
      other.max = __shfl_xor_sync(mask, s.max, o, lanes);
      other.exponent = __shfl_xor_sync(mask, s.exponent, o, lanes);
      other.sum.hi = __shfl_xor_sync(mask, s.sum.hi, o, lanes);
      other.sum.lo = __shfl_xor_sync(mask, s.sum.lo, o, lanes);
      other.inf_count = __shfl_xor_sync(mask, s.inf_count, o, lanes);
      s = merge(s, other);
    }
    return s;
  }
  __device__ double sum(double v) const {
    for (int o = lanes / 2; o > 0; o /= 2) v += __shfl_xor_sync(mask, v, o, lanes);
    return v;
  }
};

// A whole block on one row; scratch holds one entry per warp.
struct BlockGroup {
  RowState* scratch;  // blockDim.x / 32 entries of shared memory
  int rank;
  int threads;

  __device__ int size() const { return threads; }
  __device__ static BlockGroup of_block(RowState* scratch) {
    return {scratch, static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x)};
  }
  // Warps reduce by butterfly, then every thread merges the warps' states in warp order.
  __device__ RowState reduce(RowState s) const {
    s = WarpGroup{32, rank % 32, kFullMask}.reduce(s);
    __syncthreads();  // the scratch may still be read by a previous reduction
    if (rank % 32 == 0) scratch[rank / 32] = s;
    __syncthreads();
    RowState total = scratch[0];
    for (int w = 1; w < threads / 32; ++w) total = merge(total, scratch[w]);
    return total;
  }
  __device__ double sum(double v) const {
    v = WarpGroup{32, rank % 32, kFullMask}.sum(v);
    double* partial = reinterpret_cast<double*>(scratch);
    __syncthreads();
    if (rank % 32 == 0) partial[rank / 32] = v;
    __syncthreads();
    double total = partial[0];
    for (int w = 1; w < threads / 32; ++w) total += partial[w];
    return total;
  }
};

// ---- The checked path ------------------------------------------------------------------------

// Writes y[begin..end) of a row of n whose state is not fast, by device_math.h's checked rules;
// the sum runs over the whole row. The group's threads read the row again (such rows are rare:
// the cost is not the fast paths').
template <class T, class Group>
__device__ void checked_write(const T* x, T* y, std::int64_t begin, std::int64_t end, bool log, const RowState& s,
                              double sum, const ExpConstants& c, const Group& group) {
  for (std::int64_t i = begin + group.rank; i < end; i += group.size()) {
    y[i] = from_float<T>(checked_output(to_float(x[i]), s, sum, log, c));
  }
}
template <class T, class Group>
__device__ void checked_row(const T* x, T* y, std::int64_t n, std::int64_t begin, std::int64_t end, bool log,
                            const RowState& s, const ExpConstants& c, const Group& group) {
  double sum = 0.0;
  if (checked_needs_sum(s)) {
    for (std::int64_t i = group.rank; i < n; i += group.size()) sum += checked_term(to_float(x[i]), s, c);
    sum = group.sum(sum);
  }
  checked_write(x, y, begin, end, log, s, sum, c, group);
}

// ---- The algorithms' reductions, over any source of a thread's elements ---------------------
// `each(f)` calls f(value) for every element of the calling thread; three-pass algorithms call it
// twice (their rows are in registers or shared memory, or re-read from L2).

// Pass 1 of the three-pass algorithms: the maximum and the +inf count.
template <class Each>
__device__ __forceinline__ RowState max_state(Each&& each) {
  RowState s = empty_state();
  each([&](float v) { note_element(s, v); });
  return s;
}
// two_pass: (mantissa, exponent) pairs, the exponent following the largest term so far.
// online: a running maximum m, the sum rescaled (by 2^(n(m_old) - n(m_new)), exactly) when m grows.
template <Algorithm A, class Each>
__device__ __forceinline__ RowState one_pass_state(const ExpConstants& c, Each&& each) {
  RowState s = empty_state();
  float running_max = c.input_floor;
  each([&](float v) {
    note_element(s, v);
    const float x = clamp_input(v, c);
    if constexpr (A == Algorithm::kOnline) {
      if (x > running_max) {
        running_max = x;
        const int e = exponent_of_max(x, c);
        s.sum = sum_at(s, e);
        s.exponent = e;
      }
      add_element(s, x, c);
    } else {
      add_element_rescaling(s, x, c);
    }
  });
  return s;
}
// Pass 2 of three_pass_recompute: the sum relative to the exponent of the row maximum.
template <class Each>
__device__ __forceinline__ RowState sum_state(const RowState& maxima, const ExpConstants& c, Each&& each) {
  RowState s = maxima;
  s.exponent = exponent_of_max(clamp_input(maxima.max, c), c);
  s.sum = {};
  each([&](float v) { add_element(s, clamp_input(v, c), c); });
  return s;
}
// A state with its maximum and count from `maxima` and its sum from `sums` (whose own maximum is
// a partial one): the three-pass algorithms' merged row state.
__device__ __forceinline__ RowState with_maxima(RowState sums, const RowState& maxima) {
  sums.max = maxima.max;
  sums.inf_count = maxima.inf_count;
  return sums;
}

// ---- Kernel arguments -------------------------------------------------------------------------

template <class T>
struct RowsArgs {
  const T* x;
  T* y;
  std::int64_t rows;
  std::int64_t n;
  std::int64_t x_row_stride;  // elements
  std::int64_t y_row_stride;
  ExpConstants c;
  bool log;
  int lanes;                    // warp rows: threads per row
  std::int64_t chunks;          // split rows: chunks per row
  std::int64_t chunk_elements;  // split rows: elements per chunk (a multiple of 16 bytes' worth)
  RowState* chunk_maxima;       // split rows: rows * chunks (three-pass pass 1)
  RowState* chunk_states;       // split rows: rows * chunks
  double* chunk_checked;        // split rows: rows * chunks (parts of checked rows' sums)
};

// The output of one element from its input (in float) and the row's scale.
template <class T>
__device__ __forceinline__ float output_of(float v, bool log, const OutputScale& o, const ExpConstants& c) {
  return log ? log_softmax_output(v, o, c) : softmax_output(clamp_input(v, c), o, c);
}

// ---- Warp rows: a row per warp (or part of one), held in registers ---------------------------

// kColumns slots per thread (a multiple of the pack): rows of up to lanes * kColumns - (pack - 1)
// elements. Slot s of the row holds element s - offset (offset: the start's misalignment), and
// the lanes take the vectors of slots in turn, so each 16-byte load of a warp is contiguous.
template <class T, Algorithm A, int kColumns>
__global__ void __launch_bounds__(kWarpRowsThreads, 1) warp_rows_kernel(RowsArgs<T> a) {
  constexpr int P = Pack<T>::kSize;
  constexpr int kVectors = kColumns / P;
  const float neg_inf = __int_as_float(0xff800000);
  const WarpGroup g = WarpGroup::of_lanes(a.lanes);
  const std::int64_t groups_per_block = blockDim.x / a.lanes;
  const std::int64_t groups = groups_per_block * gridDim.x;
  for (std::int64_t row = blockIdx.x * groups_per_block + threadIdx.x / a.lanes; row < a.rows; row += groups) {
    const T* x = a.x + row * a.x_row_stride;
    T* y = a.y + row * a.y_row_stride;
    const int offset = misalignment(x);
    const std::int64_t end = offset + a.n;  // slots [offset, end) hold the row
    float v[kColumns];
#pragma unroll
    for (int j = 0; j < kVectors; ++j) {
      const std::int64_t s0 = (std::int64_t{j} * a.lanes + g.rank) * P;
      if (s0 >= offset && s0 + P <= end) {
        load_vector(x - offset + s0, v + j * P);
      } else {
#pragma unroll
        for (int p = 0; p < P; ++p) {
          const std::int64_t s = s0 + p;
          v[j * P + p] = (s >= offset && s < end) ? to_float(x[s - offset]) : neg_inf;
        }
      }
    }
    auto each = [&](auto&& f) {
#pragma unroll
      for (int i = 0; i < kColumns; ++i) f(v[i]);
    };
    RowState state;
    if constexpr (A == Algorithm::kTwoPass || A == Algorithm::kOnline) {
      state = g.reduce(one_pass_state<A>(a.c, each));
    } else {
      const RowState maxima = g.reduce(max_state(each));
      RowState sums;
      if constexpr (A == Algorithm::kThreePassReload) {
        // The terms replace the inputs in the registers (log_softmax needs the inputs: it sums
        // as three_pass_recompute does).
        sums = maxima;
        sums.exponent = exponent_of_max(clamp_input(maxima.max, a.c), a.c);
        sums.sum = {};
        if (!a.log) {
#pragma unroll
          for (int i = 0; i < kColumns; ++i) {
            v[i] = stored_term(clamp_input(v[i], a.c), sums.sum, sums.exponent, a.c);
          }
        } else {
          sums = sum_state(maxima, a.c, each);
        }
      } else {
        sums = sum_state(maxima, a.c, each);
      }
      state = with_maxima(g.reduce(sums), maxima);
    }
    if (!fast_state(state, a.c)) {
      checked_row(x, y, a.n, 0, a.n, a.log, state, a.c, g);
      continue;
    }
    const OutputScale o = output_scale(state, a.c);
    const bool vector_y = misalignment(y) == offset;
#pragma unroll
    for (int j = 0; j < kVectors; ++j) {
      float out[P];
#pragma unroll
      for (int p = 0; p < P; ++p) {
        const float in = v[j * P + p];
        out[p] = (A == Algorithm::kThreePassReload && !a.log) ? reloaded_output(in, o) : output_of<T>(in, a.log, o, a.c);
      }
      const std::int64_t s0 = (std::int64_t{j} * a.lanes + g.rank) * P;
      if (vector_y && s0 >= offset && s0 + P <= end) {
        store_vector<T, false>(y - offset + s0, out);
      } else {
#pragma unroll
        for (int p = 0; p < P; ++p) {
          const std::int64_t s = s0 + p;
          if (s >= offset && s < end) y[s - offset] = from_float<T>(out[p]);
        }
      }
    }
  }
}

// ---- Block rows: a row per block, cached in shared memory in its own type ---------------------

// The row is read from global memory once, into the cache (n + pack elements of dynamic shared
// memory), and the later passes read the cache. three_pass_reload stores its terms in y.
template <class T, Algorithm A>
__global__ void __launch_bounds__(kMaxBlockThreads, 1) block_rows_kernel(RowsArgs<T> a) {
  FASTSOFTMAX_DYNAMIC_SHARED(shared_bytes);
  __shared__ __align__(8) RowState scratch[kMaxBlockThreads / 32];
  T* cache = reinterpret_cast<T*>(shared_bytes);
  const BlockGroup g = BlockGroup::of_block(scratch);
  for (std::int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const T* x = a.x + row * a.x_row_stride;
    T* y = a.y + row * a.y_row_stride;
    const int offset = misalignment(x);
    const SharedRow<T> cached{cache, offset};
    // Pass 1 reads global memory and fills the cache.
    RowState first = empty_state();
    float running_max = a.c.input_floor;
    for_each_element<T>(GlobalRow<T>{x}, offset, 0, a.n, g.rank, g.size(), [&](std::int64_t i, float v) {
      cache[i + offset] = from_float<T>(v);
      note_element(first, v);
      if constexpr (A == Algorithm::kTwoPass) {
        add_element_rescaling(first, clamp_input(v, a.c), a.c);
      } else if constexpr (A == Algorithm::kOnline) {
        const float xc = clamp_input(v, a.c);
        if (xc > running_max) {
          running_max = xc;
          const int e = exponent_of_max(xc, a.c);
          first.sum = sum_at(first, e);
          first.exponent = e;
        }
        add_element(first, xc, a.c);
      }
    });
    RowState state = g.reduce(first);  // also orders the cache's writes before its reads
    auto each_cached = [&](auto&& f) {
      for_each_element<T>(cached, offset, 0, a.n, g.rank, g.size(), [&](std::int64_t, float v) { f(v); });
    };
    if constexpr (A == Algorithm::kThreePassRecompute) {
      state = with_maxima(g.reduce(sum_state(state, a.c, each_cached)), state);
    } else if constexpr (A == Algorithm::kThreePassReload) {
      // Only rows that will take the fast path store terms in y: a checked row re-reads x, which
      // is y in place.
      if (!a.log && fast_max(state.max, a.c)) {
        RowState sums = state;
        sums.exponent = exponent_of_max(clamp_input(state.max, a.c), a.c);
        sums.sum = {};
        write_elements<T, false>(cached, offset, y, 0, a.n, g.rank, g.size(), [&](std::int64_t, float v) {
          return stored_term(clamp_input(v, a.c), sums.sum, sums.exponent, a.c);
        });
        state = with_maxima(g.reduce(sums), state);
      } else {
        state = with_maxima(g.reduce(sum_state(state, a.c, each_cached)), state);
      }
    }
    if (!fast_state(state, a.c)) {
      checked_row(x, y, a.n, 0, a.n, a.log, state, a.c, g);
      __syncthreads();  // the next row's pass 1 overwrites the cache
      continue;
    }
    const OutputScale o = output_scale(state, a.c);
    if (A == Algorithm::kThreePassReload && !a.log) {
      // The terms stored in y (visible to the whole block since the reduction's barrier).
      const GlobalRow<T> stored{y};
      write_elements<T, false>(stored, misalignment(y), y, 0, a.n, g.rank, g.size(),
                               [&](std::int64_t, float term) { return reloaded_output(term, o); });
    } else {
      write_elements<T, false>(cached, offset, y, 0, a.n, g.rank, g.size(),
                               [&](std::int64_t, float v) { return output_of<T>(v, a.log, o, a.c); });
    }
    __syncthreads();  // the next row's pass 1 overwrites the cache
  }
}

// ---- Split rows: each row cut into chunks, a block per chunk ----------------------------------

// Pass A: each block's chunk state into chunk_states (two_pass, online; three-pass: kMaxima
// writes the chunk's maximum into chunk_maxima, then the sums pass reads the row's maxima, merged
// in chunk order, and writes the chunk's sum; three_pass_reload also stores its terms in y).
enum class SplitPass { kMaxima, kSums };

template <class T>
__device__ __forceinline__ RowState merged_chunks(const RowState* states, std::int64_t chunks, const BlockGroup& g) {
  // Thread t merges chunks t, t + threads, ... in order; the block then merges the threads'
  // states in a fixed tree: the same bits in every block of the row, whatever the grid.
  RowState s = empty_state();
  for (std::int64_t k = g.rank; k < chunks; k += g.size()) s = merge(s, states[k]);
  return g.reduce(s);
}

template <class T, Algorithm A, SplitPass kPass>
__global__ void __launch_bounds__(kSplitThreads, 1) split_state_kernel(RowsArgs<T> a) {
  __shared__ __align__(8) RowState scratch[kSplitThreads / 32];
  const BlockGroup g = BlockGroup::of_block(scratch);
  const std::int64_t units = a.rows * a.chunks;
  for (std::int64_t unit = blockIdx.x; unit < units; unit += gridDim.x) {
    const std::int64_t row = unit / a.chunks, chunk = unit % a.chunks;
    const T* x = a.x + row * a.x_row_stride;
    const std::int64_t begin = chunk * a.chunk_elements;
    const std::int64_t end = begin + a.chunk_elements < a.n ? begin + a.chunk_elements : a.n;
    const int offset = misalignment(x);
    auto each = [&](auto&& f) {
      for_each_element<T>(GlobalRow<T>{x}, offset, begin, end, g.rank, g.size(), [&](std::int64_t, float v) { f(v); });
    };
    RowState state;
    if constexpr (A == Algorithm::kTwoPass || A == Algorithm::kOnline) {
      state = g.reduce(one_pass_state<A>(a.c, each));
    } else if constexpr (kPass == SplitPass::kMaxima) {
      state = g.reduce(max_state(each));
    } else {
      const RowState maxima = merged_chunks<T>(a.chunk_maxima + row * a.chunks, a.chunks, g);
      if (A == Algorithm::kThreePassReload && !a.log && fast_max(maxima.max, a.c)) {
        RowState sums = maxima;
        sums.exponent = exponent_of_max(clamp_input(maxima.max, a.c), a.c);
        sums.sum = {};
        T* y = a.y + row * a.y_row_stride;
        write_elements<T, false>(GlobalRow<T>{x}, offset, y, begin, end, g.rank, g.size(), [&](std::int64_t, float v) {
          return stored_term(clamp_input(v, a.c), sums.sum, sums.exponent, a.c);
        });
        state = g.reduce(sums);
      } else {
        state = g.reduce(sum_state(maxima, a.c, each));
      }
    }
    if constexpr (kPass == SplitPass::kSums) {
      // A chunk that is not fast (values beyond the fast range; the row's maximum for three-pass)
      // reads itself again for its part of the checked sum, relative to its state's maximum:
      // pass B combines the parts, so no block ever re-reads a whole row (rare rows only).
      double partial = 0.0;
      if (!fast_state(state, a.c) && checked_needs_sum(state)) {
        each([&](float v) { partial += checked_term(v, state, a.c); });
        partial = g.sum(partial);
      }
      if (g.rank == 0) a.chunk_checked[unit] = partial;
    }
    if (g.rank == 0) (kPass == SplitPass::kMaxima ? a.chunk_maxima : a.chunk_states)[unit] = state;
    __syncthreads();  // scratch reuse by the next unit
  }
}

// Pass B: every block merges all chunk states of its row in chunk order, then writes its chunk
// (re-read from L2 where it still is), with streaming stores.
template <class T, Algorithm A>
__global__ void __launch_bounds__(kSplitThreads, 1) split_write_kernel(RowsArgs<T> a) {
  __shared__ __align__(8) RowState scratch[kSplitThreads / 32];
  const BlockGroup g = BlockGroup::of_block(scratch);
  const std::int64_t units = a.rows * a.chunks;
  for (std::int64_t unit = blockIdx.x; unit < units; unit += gridDim.x) {
    const std::int64_t row = unit / a.chunks, chunk = unit % a.chunks;
    const T* x = a.x + row * a.x_row_stride;
    T* y = a.y + row * a.y_row_stride;
    const std::int64_t begin = chunk * a.chunk_elements;
    const std::int64_t end = begin + a.chunk_elements < a.n ? begin + a.chunk_elements : a.n;
    RowState state = merged_chunks<T>(a.chunk_states + row * a.chunks, a.chunks, g);
    if constexpr (A == Algorithm::kThreePassRecompute || A == Algorithm::kThreePassReload) {
      state = with_maxima(state, merged_chunks<T>(a.chunk_maxima + row * a.chunks, a.chunks, g));
    }
    if (!fast_state(state, a.c)) {
      // The row's checked sum from the chunks' parts (pass A), in a fixed order: no block re-reads
      // the whole row (which other blocks may be overwriting, in place).
      double sum = 0.0;
      if (checked_needs_sum(state)) {
        constexpr bool kThreePass = A == Algorithm::kThreePassRecompute || A == Algorithm::kThreePassReload;
        for (std::int64_t k = g.rank; k < a.chunks; k += g.size()) {
          const std::int64_t unit_k = row * a.chunks + k;
          sum += checked_part(a.chunk_states[unit_k], a.chunk_checked[unit_k], kThreePass, state.max, a.c);
        }
        sum = g.sum(sum);
      }
      checked_write(x, y, begin, end, a.log, state, sum, a.c, g);
    } else {
      const OutputScale o = output_scale(state, a.c);
      if (A == Algorithm::kThreePassReload && !a.log) {
        write_elements<T, true>(GlobalRow<T>{y}, misalignment(y), y, begin, end, g.rank, g.size(),
                                [&](std::int64_t, float term) { return reloaded_output(term, o); });
      } else {
        write_elements<T, true>(GlobalRow<T>{x}, misalignment(x), y, begin, end, g.rank, g.size(),
                                [&](std::int64_t, float v) { return output_of<T>(v, a.log, o, a.c); });
      }
    }
    __syncthreads();  // scratch reuse by the next unit
  }
}

// ---- Fused softmax + top-k ----------------------------------------------------------------------

// Keys that order floats as integers (-0 as +0, so equal values tie and the index decides).
__device__ __forceinline__ unsigned order_key(float v) {
  const unsigned bits = __float_as_uint(v == 0.0f ? 0.0f : v);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}
__device__ __forceinline__ float key_value(unsigned key) {
  return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

template <class T>
struct TopkArgs {
  const T* x;
  T* values;
  std::int64_t* indices;
  std::int64_t rows;
  std::int64_t n;
  std::int64_t x_row_stride;
  std::int64_t out_row_stride;  // values
  std::int64_t out_stride;
  std::int64_t index_row_stride;  // indices (their own layout in a generic Call)
  std::int64_t index_stride;
  int k;
  ExpConstants c;
  // Split top-k rows: chunks per row and their length, and per chunk its state, its part of a
  // checked sum, and its k best (key, index) candidates, sorted.
  std::int64_t chunks;
  std::int64_t chunk_elements;
  RowState* chunk_states;
  double* chunk_checked;
  unsigned* chunk_keys;
  std::int64_t* chunk_indices;
};

// The block's shared memory for one selection.
struct TopkShared {
  unsigned long long histogram[256];  // 64-bit: rows may exceed 2^32 elements
  unsigned keys[kTopkCapacity];       // the selected candidates, then sorted
  std::int64_t indices[kTopkCapacity];
  unsigned selected_prefix, still_needed, above_count, equal_taken;
  unsigned warp_equal[kTopkThreads / 32];
};

// The k best of `count` candidates (larger key first, then lower index) into sh.keys/indices,
// sorted. each_key(f) calls f(i, key) for every candidate i (any order, any thread);
// key_at(i) / index_at(i) read candidate i, and candidates equal in key must come in increasing
// index order along i (ties go to the first ones). The top byte's histogram is filled by the
// caller when histogram_ready (fused with its own first pass), else here. A radix select of the
// k-th key K, a byte at a time; then the candidates above K and the first `needed` equal to K
// (a block scan per tile keeps their order); then a bitonic sort.
template <class EachKey, class KeyAt, class IndexAt>
__device__ void select_top(std::int64_t count, int k, bool histogram_ready, EachKey&& each_key, KeyAt&& key_at,
                           IndexAt&& index_at, TopkShared& sh, const BlockGroup& g) {
  if (!histogram_ready) {
    for (int b = g.rank; b < 256; b += g.size()) sh.histogram[b] = 0;
    __syncthreads();
    each_key([&](std::int64_t, unsigned key) { atomicAdd(&sh.histogram[key >> 24], 1ull); });
  }
  unsigned prefix = 0, prefix_mask = 0;
  if (g.rank == 0) sh.still_needed = static_cast<unsigned>(k);
  for (int shift = 24; shift >= 0; shift -= 8) {
    if (shift < 24) {
      __syncthreads();
      for (int b = g.rank; b < 256; b += g.size()) sh.histogram[b] = 0;
      __syncthreads();
      each_key([&](std::int64_t, unsigned key) {
        if ((key & prefix_mask) == prefix) atomicAdd(&sh.histogram[(key >> shift) & 255u], 1ull);
      });
    }
    __syncthreads();
    if (g.rank == 0) {
      unsigned long long above = 0;
      int bin = 255;
      while (above + sh.histogram[bin] < sh.still_needed) above += sh.histogram[bin--];
      sh.still_needed -= static_cast<unsigned>(above);  // above < still_needed <= k here
      sh.selected_prefix = prefix | (static_cast<unsigned>(bin) << shift);
    }
    __syncthreads();
    prefix = sh.selected_prefix;
    prefix_mask |= 255u << shift;
  }
  const unsigned threshold = prefix;  // K; still_needed: how many equal to K to take
  if (g.rank == 0) sh.above_count = sh.equal_taken = 0;
  __syncthreads();
  const unsigned needed = sh.still_needed;
  const unsigned above_total = static_cast<unsigned>(k) - needed;
  for (std::int64_t tile = 0; tile < count; tile += g.size()) {
    const std::int64_t i = tile + g.rank;
    const unsigned key = i < count ? key_at(i) : 0u;
    const bool is_equal = i < count && key == threshold;
    if (i < count && key > threshold) {
      const unsigned slot = atomicAdd(&sh.above_count, 1u);
      sh.keys[slot] = key;
      sh.indices[slot] = index_at(i);
    }
    const unsigned ballot = __ballot_sync(kFullMask, is_equal);
    if (g.rank % 32 == 0) sh.warp_equal[g.rank / 32] = __popc(ballot);
    __syncthreads();
    unsigned before = sh.equal_taken;
    for (int w = 0; w < g.rank / 32; ++w) before += sh.warp_equal[w];
    before += __popc(ballot & ((1u << (g.rank % 32)) - 1u));
    if (is_equal && before < needed) {
      sh.keys[above_total + before] = key;
      sh.indices[above_total + before] = index_at(i);
    }
    __syncthreads();
    if (g.rank == 0) {  // capped at `needed`: no overflow however many keys equal K
      unsigned tile_equal = 0;
      for (int w = 0; w < g.size() / 32; ++w) tile_equal += sh.warp_equal[w];
      sh.equal_taken = sh.equal_taken + tile_equal < needed ? sh.equal_taken + tile_equal : needed;
    }
    __syncthreads();
  }
  int padded = 1;
  while (padded < k) padded *= 2;
  for (int j = k + g.rank; j < padded; j += g.size()) {
    sh.keys[j] = 0;
    sh.indices[j] = INT64_MAX;
  }
  __syncthreads();
  for (int size = 2; size <= padded; size *= 2) {
    for (int stride = size / 2; stride > 0; stride /= 2) {
      for (int i = g.rank; i < padded; i += g.size()) {
        const int partner = i ^ stride;
        if (partner > i) {
          const bool first_better = sh.keys[i] > sh.keys[partner] ||
                                    (sh.keys[i] == sh.keys[partner] && sh.indices[i] < sh.indices[partner]);
          const bool descending = (i & size) == 0;
          if (first_better != descending) {
            const unsigned key = sh.keys[i];
            sh.keys[i] = sh.keys[partner];
            sh.keys[partner] = key;
            const std::int64_t index = sh.indices[i];
            sh.indices[i] = sh.indices[partner];
            sh.indices[partner] = index;
          }
        }
      }
      __syncthreads();
    }
  }
}

// The online state of elements [begin, end) of a row, with the top byte's histogram of their
// keys filled on the way (one read).
template <class T>
__device__ RowState state_and_histogram(const T* x, std::int64_t begin, std::int64_t end, const ExpConstants& c,
                                        TopkShared& sh, const BlockGroup& g) {
  for (int b = g.rank; b < 256; b += g.size()) sh.histogram[b] = 0;
  __syncthreads();
  return g.reduce(one_pass_state<Algorithm::kOnline>(c, [&](auto&& f) {
    for_each_element<T>(GlobalRow<T>{x}, misalignment(x), begin, end, g.rank, g.size(), [&](std::int64_t, float v) {
      f(v);
      atomicAdd(&sh.histogram[order_key(v) >> 24], 1ull);
    });
  }));
}

// Writes a row's k results from the sorted candidates: the fast formula, or the checked rules
// (NaN and only -inf rows: NaN at indices 0..k-1; +inf rows share the mass; huge values by the
// checked sum).
template <class T>
__device__ void write_topk(const TopkArgs<T>& a, std::int64_t row, const RowState& state, double checked_sum,
                           const TopkShared& sh, const BlockGroup& g) {
  T* values = a.values + row * a.out_row_stride;
  std::int64_t* indices = a.indices + row * a.index_row_stride;
  const bool fast = fast_state(state, a.c);
  const OutputScale o = fast ? output_scale(state, a.c) : OutputScale{};
  const bool no_order = is_nan(state.max) || state.max == -__int_as_float(0x7f800000);
  for (int j = g.rank; j < a.k; j += g.size()) {
    const float v = key_value(sh.keys[j]);
    const float p = fast ? softmax_output(clamp_input(v, a.c), o, a.c) : checked_output(v, state, checked_sum, false, a.c);
    values[j * a.out_stride] = from_float<T>(p);
    indices[j * a.index_stride] = no_order ? j : sh.indices[j];
  }
}

// Top-k rows: a block per row. The state and the first histogram in one read of the row, the
// rest of the radix select re-reading it (from L2), the k candidates sorted in shared memory and
// their probabilities computed from the state. Nothing of size n is written.
template <class T>
__global__ void __launch_bounds__(kTopkThreads, 1) topk_rows_kernel(TopkArgs<T> a) {
  __shared__ __align__(8) RowState scratch[kTopkThreads / 32];
  __shared__ TopkShared sh;
  const BlockGroup g = BlockGroup::of_block(scratch);
  for (std::int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const T* x = a.x + row * a.x_row_stride;
    const int offset = misalignment(x);
    const RowState state = state_and_histogram(x, 0, a.n, a.c, sh, g);
    if (!is_nan(state.max) && state.max != -__int_as_float(0x7f800000)) {
      select_top(
          a.n, a.k, true,
          [&](auto&& f) {
            for_each_element<T>(GlobalRow<T>{x}, offset, 0, a.n, g.rank, g.size(),
                                [&](std::int64_t i, float v) { f(i, order_key(v)); });
          },
          [&](std::int64_t i) { return order_key(to_float(x[i])); }, [](std::int64_t i) { return i; }, sh, g);
    }
    double checked_sum = 0.0;
    if (!fast_state(state, a.c) && checked_needs_sum(state)) {
      for_each_element<T>(GlobalRow<T>{x}, offset, 0, a.n, g.rank, g.size(),
                          [&](std::int64_t, float v) { checked_sum += checked_term(v, state, a.c); });
      checked_sum = g.sum(checked_sum);
    }
    write_topk(a, row, state, checked_sum, sh, g);
    __syncthreads();  // sh reuse by the next row
  }
}

// Split top-k, pass A: each chunk's online state, its part of a checked sum (chunks that are not
// fast), and its own k best candidates, sorted (so that equal keys come in index order).
template <class T>
__global__ void __launch_bounds__(kTopkThreads, 1) split_topk_kernel(TopkArgs<T> a) {
  __shared__ __align__(8) RowState scratch[kTopkThreads / 32];
  __shared__ TopkShared sh;
  const BlockGroup g = BlockGroup::of_block(scratch);
  const std::int64_t units = a.rows * a.chunks;
  for (std::int64_t unit = blockIdx.x; unit < units; unit += gridDim.x) {
    const std::int64_t row = unit / a.chunks, chunk = unit % a.chunks;
    const T* x = a.x + row * a.x_row_stride;
    const int offset = misalignment(x);
    const std::int64_t begin = chunk * a.chunk_elements;
    const std::int64_t end = begin + a.chunk_elements < a.n ? begin + a.chunk_elements : a.n;
    const RowState state = state_and_histogram(x, begin, end, a.c, sh, g);
    const int k = static_cast<int>(end - begin < a.k ? end - begin : a.k);
    select_top(
        end - begin, k, true,
        [&](auto&& f) {
          for_each_element<T>(GlobalRow<T>{x}, offset, begin, end, g.rank, g.size(),
                              [&](std::int64_t i, float v) { f(i, order_key(v)); });
        },
        [&](std::int64_t i) { return order_key(to_float(x[begin + i])); }, [&](std::int64_t i) { return begin + i; },
        sh, g);
    double partial = 0.0;
    if (!fast_state(state, a.c) && checked_needs_sum(state)) {
      for_each_element<T>(GlobalRow<T>{x}, offset, begin, end, g.rank, g.size(),
                          [&](std::int64_t, float v) { partial += checked_term(v, state, a.c); });
      partial = g.sum(partial);
    }
    // k slots a chunk; a chunk shorter than k pads with keys below every real one.
    for (int j = g.rank; j < a.k; j += g.size()) {
      a.chunk_keys[unit * a.k + j] = j < k ? sh.keys[j] : 0u;
      a.chunk_indices[unit * a.k + j] = j < k ? sh.indices[j] : INT64_MAX;
    }
    if (g.rank == 0) {
      a.chunk_states[unit] = state;
      a.chunk_checked[unit] = partial;
    }
    __syncthreads();  // sh reuse by the next unit
  }
}

// Split top-k, pass B: a block per row merges the chunk states in chunk order and selects the k
// best of the chunks' candidates (in chunk order: equal keys stay in index order).
template <class T>
__global__ void __launch_bounds__(kTopkThreads, 1) topk_merge_kernel(TopkArgs<T> a) {
  __shared__ __align__(8) RowState scratch[kTopkThreads / 32];
  __shared__ TopkShared sh;
  const BlockGroup g = BlockGroup::of_block(scratch);
  for (std::int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const RowState state = merged_chunks<T>(a.chunk_states + row * a.chunks, a.chunks, g);
    const unsigned* keys = a.chunk_keys + row * a.chunks * a.k;
    const std::int64_t* indices = a.chunk_indices + row * a.chunks * a.k;
    const std::int64_t count = a.chunks * a.k;
    if (!is_nan(state.max) && state.max != -__int_as_float(0x7f800000)) {
      select_top(
          count, a.k, false,
          [&](auto&& f) {
            for (std::int64_t i = g.rank; i < count; i += g.size()) f(i, keys[i]);
          },
          [&](std::int64_t i) { return keys[i]; }, [&](std::int64_t i) { return indices[i]; }, sh, g);
    }
    double checked_sum = 0.0;
    if (!fast_state(state, a.c) && checked_needs_sum(state)) {
      for (std::int64_t k = g.rank; k < a.chunks; k += g.size()) {
        const std::int64_t unit = row * a.chunks + k;
        checked_sum += checked_part(a.chunk_states[unit], a.chunk_checked[unit], false, state.max, a.c);
      }
      checked_sum = g.sum(checked_sum);
    }
    write_topk(a, row, state, checked_sum, sh, g);
    __syncthreads();  // sh reuse by the next row
  }
}

}  // namespace fastsoftmax::cuda
