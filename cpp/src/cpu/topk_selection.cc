// The running top-k of fused softmax + top-k. Compiled for the baseline target.
#include "cpu/topk_selection.h"

#include <algorithm>
#include <limits>

#include "kernels/half.h"

namespace fastsoftmax {
namespace {

// Room for this many offers beyond k before the buffer is cut back to the best k: small k keep
// a buffer of a few cache lines, large k one of 2k. A kernel block more, so that a kernel's pass
// stops (to make room) about when the buffer holds that many.
constexpr std::size_t kMinSpareOffers = 64;

// (A function object, not a function pointer: the sorts inline it, 2-3x faster on short rows.)
struct Better {
  template <class C>
  bool operator()(const TopkCandidate<C>& a, const TopkCandidate<C>& b) const {
    return a.value > b.value || (a.value == b.value && a.index < b.index);
  }
};

}  // namespace

template <class C>
TopkSelector<C>::TopkSelector(std::size_t k)
    : k_(k), buffer_(k + std::max(k, kMinSpareOffers) + kMaxKernelBlock) {
  candidates_ = {buffer_.data(), 0, buffer_.size(), -std::numeric_limits<C>::infinity()};
}

template <class C>
TopkSelector<C>::TopkSelector(const TopkSelector& other)
    : k_(other.k_), buffer_(other.buffer_), candidates_(other.candidates_) {
  candidates_.entries = buffer_.data();
}

template <class C>
void TopkSelector<C>::clear() {
  candidates_.count = 0;
  candidates_.threshold = -std::numeric_limits<C>::infinity();
}

template <class C>
void TopkSelector<C>::make_room() {
  if (candidates_.count <= k_) return;
  Candidate* first = candidates_.entries;
  std::nth_element(first, first + (k_ - 1), first + candidates_.count, Better{});
  candidates_.count = k_;
  candidates_.threshold = first[k_ - 1].value;
}

template <class C>
void TopkSelector<C>::offer(C value, std::int64_t index) {
  if (candidates_.count == candidates_.capacity) make_room();
  if (value > candidates_.threshold) candidates_.entries[candidates_.count++] = {value, index};
}

template <class C>
void TopkSelector<C>::merge(const TopkSelector& other) {
  for (std::size_t i = 0; i < other.candidates_.count; ++i) {
    const Candidate& c = other.candidates_.entries[i];
    offer(c.value, c.index);
  }
}

template <class C>
template <class In>
const typename TopkSelector<C>::Candidate* TopkSelector<C>::finish(std::size_t n, const In* x, bool sorted) {
  make_room();
  constexpr C kNegInf = -std::numeric_limits<C>::infinity();
  Candidate* first = candidates_.entries;
  for (std::size_t i = 0; candidates_.count < k_ && i < n; ++i) {
    if (widen(x[i]) == kNegInf) first[candidates_.count++] = {kNegInf, static_cast<std::int64_t>(i)};
  }
  if (sorted) std::sort(first, first + candidates_.count, Better{});
  return first;
}

template class TopkSelector<float>;
template class TopkSelector<double>;
template const TopkSelector<float>::Candidate* TopkSelector<float>::finish(std::size_t, const float*, bool);
template const TopkSelector<float>::Candidate* TopkSelector<float>::finish(std::size_t, const Float16*, bool);
template const TopkSelector<float>::Candidate* TopkSelector<float>::finish(std::size_t, const BFloat16*, bool);
template const TopkSelector<double>::Candidate* TopkSelector<double>::finish(std::size_t, const double*, bool);

}  // namespace fastsoftmax
