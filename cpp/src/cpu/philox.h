// Internal: the counter-based random numbers of sample(): Philox4x64-10 (Salmon, Moraes, Dror and
// Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the generator of NumPy's
// numpy.random.Philox. A draw is a pure function of (key, counter), so every row's numbers can be
// made by whichever thread samples it, in any order, and still be the same.
#pragma once

#include <array>
#include <cstdint>

namespace fastsoftmax {

using PhiloxCounter = std::array<std::uint64_t, 4>;
using PhiloxKey = std::array<std::uint64_t, 2>;

// Four 64-bit random words for `counter` under `key`: ten rounds of the Philox S-box (two 64 x
// 64 -> 128-bit multiplications), the key bumped by the Weyl constants between rounds.
inline PhiloxCounter philox4x64_10(PhiloxCounter counter, PhiloxKey key) {
  constexpr std::uint64_t kMultiplier0 = 0xD2E7470EE14C6C93ULL;
  constexpr std::uint64_t kMultiplier1 = 0xCA5A826395121157ULL;
  constexpr std::uint64_t kWeyl0 = 0x9E3779B97F4A7C15ULL;  // the golden ratio
  constexpr std::uint64_t kWeyl1 = 0xBB67AE8584CAA73BULL;  // sqrt(3) - 1
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    if (round > 0) {
      key[0] += kWeyl0;
      key[1] += kWeyl1;
    }
    const unsigned __int128 product0 = static_cast<unsigned __int128>(kMultiplier0) * counter[0];
    const unsigned __int128 product1 = static_cast<unsigned __int128>(kMultiplier1) * counter[2];
    const auto high0 = static_cast<std::uint64_t>(product0 >> 64), low0 = static_cast<std::uint64_t>(product0);
    const auto high1 = static_cast<std::uint64_t>(product1 >> 64), low1 = static_cast<std::uint64_t>(product1);
    counter = {high1 ^ counter[1] ^ key[0], low1, high0 ^ counter[3] ^ key[1], low0};
  }
  return counter;
}

// A 64-bit word as a uniform double in [0, 1): its top 53 bits times 2^-53.
inline double uniform_of(std::uint64_t word) { return static_cast<double>(word >> 11) * 0x1p-53; }

}  // namespace fastsoftmax
