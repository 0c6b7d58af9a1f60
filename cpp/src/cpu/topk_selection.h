// Internal: the running top-k of fused softmax + top-k (Milakov & Gimelshein 2018, Alg. 4): the
// kernels' passes append candidates (inputs above the threshold) to a selector's buffer; the
// selector keeps the best k whenever the buffer fills, raising the threshold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cpu/normalizer.h"
#include "kernels/kernel_types.h"

namespace fastsoftmax {

// The k best (value, index) pairs of the inputs offered so far. The order is that of the
// results: the larger value first and, for equal values, the lower index (softmax is increasing
// in x, so this orders the probabilities, and keeps an order among inputs whose probabilities
// both round to 0). Kernels sweep a row in index order and offer only values above the
// threshold: an equal value comes later than the one held, so it would lose the tie anyway.
//
// The buffer holds a few times k entries; when it is full the best k are kept and the threshold
// rises to the k-th of them. So each offer costs O(1) amortized, and on a row in random order
// only about k * log(n / k) inputs are ever offered.
template <class C>
class TopkSelector {
 public:
  using Candidate = TopkCandidate<C>;

  explicit TopkSelector(std::size_t k);
  TopkSelector(const TopkSelector& other);
  TopkSelector& operator=(const TopkSelector&) = delete;

  // Forgets every offer: the next row starts.
  void clear();
  // What a kernel appends to: the threshold, and room for at least kMaxKernelBlock entries once
  // make_room() has run.
  TopkCandidates<C>* candidates() { return &candidates_; }
  // Keeps the best k, raising the threshold to the k-th of them.
  void make_room();
  // Takes x[index] = value, value > threshold (the checked path's offers).
  void offer(C value, std::int64_t index);
  // Takes every candidate of another selector (a later slice of the same row, its indices
  // already the row's): whatever their order, the cut back to the best k orders them in full.
  void merge(const TopkSelector& other);
  // The k best of row x[0, n) (every input above -inf has been offered; rows with NaN never
  // get here): the first -inf entries make up for a row with fewer than k finite values. In
  // result order if `sorted`, else in any order. x's elements are C, or 16-bit for C = float.
  template <class In>
  const Candidate* finish(std::size_t n, const In* x, bool sorted);

 private:
  std::size_t k_;
  std::vector<Candidate> buffer_;
  TopkCandidates<C> candidates_;  // over buffer_
};

// Reduces x[0, n) (the row's elements from first_index on) into its normalizer while the selector
// collects its candidates: the kernel's pass, resumed after making room as often as it stops.
template <class T>
Normalizer<ComputeOf<T>> reduce_topk(TopkKernel<T> kernel, std::size_t n, const T* x, std::int64_t first_index,
                                     Temperature t, TopkSelector<ComputeOf<T>>& selector) {
  using C = ComputeOf<T>;
  Normalizer<C> state;
  std::size_t done = kernel(n, x, first_index, t, selector.candidates(), &state);
  while (done < n) {
    selector.make_room();
    Normalizer<C> parts[2] = {state, {}};
    done += kernel(n - done, x + done, first_index + static_cast<std::int64_t>(done), t, selector.candidates(),
                   &parts[1]);
    state = merge_normalizers<C>(2, t, [&parts](int i) -> const Normalizer<C>& { return parts[i]; });
  }
  return state;
}

}  // namespace fastsoftmax
