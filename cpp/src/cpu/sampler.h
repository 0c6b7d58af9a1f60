// Internal: sampling a token from one row of logits (Operation::kSample, SamplingParams), by the
// passes fastsoftmax.h describes at sample(): the row's normalizer from the reduction kernels
// (softmax_topk's fused pass with top_k), then the filters and the draw on the entries that may
// be kept, in the wide type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "cpu/topk_selection.h"
#include "fastsoftmax/fastsoftmax.h"
#include "kernels/kernel_types.h"

namespace fastsoftmax {

// The kernels a row is sampled with: the plan's target's (`simd`: the fast range and the SIMD
// temperature range apply to them) and the scalar target's, for the temperatures those do not fold.
template <class T>
struct SamplerKernels {
  const RowKernels<T>& kernels;
  const RowKernels<T>& scalar;
  bool simd;
};

// An entry of a row that may be kept: its logit, index and weight exp((x - max) / temperature).
template <class T>
struct SampleEntry {
  ComputeOf<T> value;
  std::int64_t index;
  WideOf<T> weight;
};

// Room for a row's entries, grown without being initialized (the second pass writes an entry for
// every element of a block it looks at, and counts only those it keeps).
template <class T>
struct SampleEntries {
  std::unique_ptr<SampleEntry<T>[]> data;
  std::size_t capacity = 0;
  std::size_t size = 0;  // the entries held

  // Room for n entries (the ones held are kept only while n fits).
  SampleEntry<T>* room(std::size_t n) {
    if (n > capacity) {
      data.reset(new SampleEntry<T>[n]);
      capacity = n;
      size = 0;
    }
    return data.get();
  }
};

// A thread's room for sampling rows.
template <class T>
struct SampleScratch {
  SampleEntries<T> entries;
  std::vector<SampleEntry<T>> bin;                      // the entries of the nucleus's last bin
  std::vector<T> chunk;                                 // one chunk's probabilities (or weights)
  std::vector<WideOf<T>> bins;                          // the nucleus's weights by bin
  std::optional<TopkSelector<ComputeOf<T>>> selector;  // made for the top_k of the rows being sampled
  std::size_t selector_k = 0;
};

struct SampleResult {
  std::int64_t id;     // the token, or kSampleNanRow / kSampleEmptyRow
  double probability;  // its probability in the distribution it was drawn from (greedy: 1)
};

// One contiguous row of n >= 1 logits; `row` is its index in the call (the random numbers' counter).
template <class T>
SampleResult sample_row(const SamplerKernels<T>& kernels, std::size_t n, const T* x, const SamplingParams& params,
                        std::uint64_t seed, std::uint64_t row, SampleScratch<T>& scratch);

}  // namespace fastsoftmax
