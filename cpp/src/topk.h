// Internal: fused softmax + top-k (Milakov & Gimelshein 2018, Alg. 4). One pass over a row
// finds its normalizer (the online algorithm) while a running top-k keeps the largest inputs;
// only the k winners' probabilities are then computed. Nothing of the size of the row is written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels.h"

namespace fastsoftmax {

// A row's normalizer as the one-pass kernels leave it:
// sum(exp((x - shift) / temperature)) = sum * exp(log_scale). The SIMD passes find it as
// (sum, exponent): shift 0, log_scale exponent * ln(2); the scalar ones relative to the row
// maximum m: shift m, log_scale 0, so no large quotient x / t is ever rounded.
template <class T>
struct TopkTotal {
  WideOf<T> sum;
  WideOf<T> log_scale;
  T shift;
};

// The k best (value, index) pairs of the inputs offered so far. The order is that of the
// results: the larger value first and, for equal values, the lower index (softmax is increasing
// in x, so this orders the probabilities, and keeps an order among inputs whose probabilities
// both round to 0). Kernels sweep a row in index order and offer only values above threshold():
// an equal value comes later than the one held, so it would lose the tie anyway.
//
// Offers go into a buffer of a few times k entries; when it is full the best k are kept and the
// threshold rises to the k-th of them. So each offer costs O(1) amortized, and on a row in
// random order only about k * log(n / k) inputs are ever offered.
//
// Defined in topk.cc for the baseline target: the SIMD kernels call these functions but never
// instantiate any of them (or the standard library templates behind them) with their own flags.
template <class T>
class TopkSelector {
 public:
  struct Candidate {
    T value;
    std::int64_t index;
  };

  explicit TopkSelector(std::size_t k);
  // Forgets every offer: the next row starts.
  void clear();
  // Inputs at or below it cannot be among the k best (-inf until the buffer first fills).
  T threshold() const;
  // Takes x[index] = value, value > threshold(); returns the threshold after it.
  T offer(T value, std::size_t index);
  // Takes the lanes[l] (x[first_index + l]) of the set bits l of `mask` that are above the
  // threshold as it rises; returns the threshold after them. (One call per SIMD vector.)
  T offer_lanes(const T* lanes, unsigned mask, std::size_t first_index);
  // Takes every candidate of another selector, its indices shifted by index_offset (a later slice
  // of the same row): whatever their order, the cut back to the best k orders them in full.
  void merge(const TopkSelector& other, std::size_t index_offset);
  // The k best of row x[0, n) (every input above -inf has been offered; rows with NaN never
  // get here): the first -inf entries make up for a row with fewer than k finite values. In
  // result order if `sorted`, else in any order. x's elements are T, or 16-bit for T = float.
  template <class In>
  const Candidate* finish(std::size_t n, const In* x, bool sorted);

 private:
  void keep_best();

  void append(T value, std::size_t index);

  std::size_t k_;
  std::size_t capacity_;
  T threshold_;
  std::vector<Candidate> buffer_;
};

// A call: the rows of `layout` (its y strides place the k results of each row in values and
// indices), each row's top k by `pass`.
template <class T>
struct TopkJob {
  const T* x;
  T* values;  // rounded to T (the 16-bit types) from the probabilities computed in WideOf<T>
  std::int64_t* indices;
  RowLayout layout;
  std::size_t k;  // 1 <= k <= layout.n
  bool sorted;
  Temperature temperature;
  TopkPass<T> pass;
};

// Runs every row of the job on up to `requested_threads` threads (0: get_num_threads()).
template <class T>
void run_topk_rows(const TopkJob<T>& job, int requested_threads);

}  // namespace fastsoftmax
