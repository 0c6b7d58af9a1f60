// device_check: fastsoftmax's CUDA backend on a GPU, through the C++ API (fastsoftmax/cuda.h).
//
// Host code only (the CUDA runtime API for memory and streams). For float, Float16 and BFloat16
// rows of about 1, 31, 33, 1025, 4097, 70000 and 2^20 + 3 elements in batches of 1, 7 and 300,
// it runs cuda::softmax and cuda::log_softmax with every algorithm and cuda::softmax_topk (auto
// and online), each on contiguous rows, on row-strided rows and from a misaligned start
// (pointer + 1 element), all on a non-default stream, and compares the results with a softmax
// computed in double on the host from the same (rounded) inputs:
//   - softmax: |y - ref| <= rtol * |ref| + atol, log_softmax: |y - ref| <= rtol * max(|ref|, 1),
//     with rtol 1e-6 for float and 1e-2 for the 16-bit types (atol: a few of the type's smallest
//     subnormals);
//   - softmax_topk: the indices exactly (the larger input first, the lower index among equal
//     inputs), the values as softmax;
//   - nothing written outside the rows (the output buffers' padding keeps its 0xFF bytes), and
//     argument errors (k = 0, k > n, a two-pass top-k, non-adjacent elements) refused with
//     nothing written.
// Every device buffer is fully initialized before anything reads it (for compute-sanitizer's
// initcheck): inputs, row padding included (NaN there, so a kernel reading past its row would
// poison its result), are copied from the host; outputs are filled with 0xFF bytes first.
//
//   device_check [--quick]     --quick: fewer cases (for the compute-sanitizer runs)
//
// Exit status: 0 all passed, 1 a mismatch or a failed call, 2 no usable device.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "fastsoftmax/cuda.h"

namespace {

namespace fs = fastsoftmax;

// ---- 16-bit values on the host -----------------------------------------------------------------

float half_to_float(std::uint16_t h) {
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  float v;
  if (exponent == 0) {
    v = std::ldexp(static_cast<float>(mantissa), -24);  // zero or subnormal
  } else if (exponent == 31) {
    v = mantissa != 0 ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    v = std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
  }
  return (h & 0x8000) ? -v : v;
}

// To nearest even (the default rounding mode of std::nearbyint).
std::uint16_t float_to_half(float f) {
  const std::uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (std::isnan(f)) return 0x7e00;
  const float a = std::fabs(f);
  if (a >= 65520.0f) return sign | 0x7c00;  // rounds to infinity
  if (a < std::ldexp(1.0f, -14)) {          // subnormal: units of 2^-24 (1024 is the smallest normal)
    return static_cast<std::uint16_t>(sign | static_cast<int>(std::nearbyint(std::ldexp(a, 24))));
  }
  int e = 0;
  std::frexp(a, &e);  // a = [0.5, 1) * 2^e
  int q = static_cast<int>(std::nearbyint(std::ldexp(a, 11 - e)));  // 1024..2048
  int biased = e - 1 + 15;
  if (q == 2048) {
    q = 1024;
    ++biased;
  }
  if (biased >= 31) return sign | 0x7c00;
  return static_cast<std::uint16_t>(sign | (biased << 10) | (q - 1024));
}

float bfloat16_to_float(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

std::uint16_t float_to_bfloat16(float f) {
  if (std::isnan(f)) return 0x7fc0;
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  bits += 0x7fff + ((bits >> 16) & 1);  // to nearest even
  return static_cast<std::uint16_t>(bits >> 16);
}

template <class T>
struct Type;
template <>
struct Type<float> {
  static constexpr const char* kName = "float32";
  static constexpr double kRtol = 1e-6;
  static constexpr double kAtol = 4 * 1.401298464324817e-45;  // 4 float subnormal steps
  static float decode(float v) { return v; }
  static float encode(float v) { return v; }
  static float nan() { return std::numeric_limits<float>::quiet_NaN(); }
};
template <>
struct Type<fs::Float16> {
  static constexpr const char* kName = "float16";
  static constexpr double kRtol = 1e-2;
  static constexpr double kAtol = 2 * 5.9604644775390625e-08;  // 2 float16 subnormal steps (2^-24)
  static float decode(fs::Float16 v) { return half_to_float(v.bits); }
  static fs::Float16 encode(float v) { return {float_to_half(v)}; }
  static fs::Float16 nan() { return {0x7e00}; }
};
template <>
struct Type<fs::BFloat16> {
  static constexpr const char* kName = "bfloat16";
  static constexpr double kRtol = 1e-2;
  static constexpr double kAtol = 2 * 9.183549615799121e-41;  // 2 bfloat16 subnormal steps (2^-133)
  static float decode(fs::BFloat16 v) { return bfloat16_to_float(v.bits); }
  static fs::BFloat16 encode(float v) { return {float_to_bfloat16(v)}; }
  static fs::BFloat16 nan() { return {0x7fc0}; }
};

// ---- Cases ---------------------------------------------------------------------------------------

enum class Op { kSoftmax, kLogSoftmax, kTopk };
const char* op_name(Op op) {
  switch (op) {
    case Op::kSoftmax: return "softmax";
    case Op::kLogSoftmax: return "log_softmax";
    case Op::kTopk: return "softmax_topk";
  }
  return "?";
}

enum class Place { kContiguous, kStrided, kMisaligned };
const char* place_name(Place p) {
  switch (p) {
    case Place::kContiguous: return "contiguous";
    case Place::kStrided: return "row-strided";
    case Place::kMisaligned: return "misaligned";
  }
  return "?";
}

struct Shape {
  std::size_t rows, n;
};

constexpr std::size_t kGuard = 16;      // padding elements after every buffer's last row
constexpr std::size_t kTopMax = 64;     // the largest k checked
constexpr std::ptrdiff_t kXPad = 5;     // row-strided: x rows n + 5 apart
constexpr std::ptrdiff_t kYPad = 3;     // and y rows n + 3 (top-k outputs: k + 3)
constexpr int kMaxReported = 12;        // mismatches printed in full

const fs::Algorithm kAlgorithms[] = {fs::Algorithm::kAuto, fs::Algorithm::kTwoPass, fs::Algorithm::kThreePassReload,
                                     fs::Algorithm::kThreePassRecompute, fs::Algorithm::kOnline};
const fs::Algorithm kTopkAlgorithms[] = {fs::Algorithm::kAuto, fs::Algorithm::kOnline};

struct Tally {
  long runs = 0;
  long failures = 0;
  int reported = 0;
  std::map<std::string, double> worst;  // "dtype op" -> the largest |y - ref| / tolerance seen
};

bool cuda_ok(cudaError_t e, const char* what, Tally& tally) {
  if (e == cudaSuccess) return true;
  std::printf("CUDA error in %s: %s\n", what, cudaGetErrorString(e));
  ++tally.failures;
  return false;
}

// One input of `shape` and its host reference, shared by every operation, algorithm and layout.
template <class T>
struct Data {
  Shape shape{};
  std::vector<T> x;               // rows * n, contiguous
  std::vector<double> softmax;    // reference, rows * n
  std::vector<double> log;        // reference, rows * n
  std::vector<std::int64_t> top;  // rows * top_k: indices, larger input first, lower index on ties
  std::size_t top_k = 0;
};

template <class T>
Data<T> make_data(Shape shape, std::uint64_t seed) {
  Data<T> d;
  d.shape = shape;
  const std::size_t rows = shape.rows, n = shape.n;
  d.x.resize(rows * n);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<double> v(rows * n);
  for (std::size_t i = 0; i < rows * n; ++i) {
    d.x[i] = Type<T>::encode(normal(rng));
    v[i] = Type<T>::decode(d.x[i]);
  }
  d.softmax.resize(rows * n);
  d.log.resize(rows * n);
  d.top_k = std::min(n, kTopMax);
  d.top.resize(rows * d.top_k);
  std::vector<std::int64_t> order(n);
  for (std::size_t r = 0; r < rows; ++r) {
    const double* row = &v[r * n];
    const double m = *std::max_element(row, row + n);
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += std::exp(row[i] - m);
    const double log_sum = std::log(sum);
    for (std::size_t i = 0; i < n; ++i) {
      d.softmax[r * n + i] = std::exp(row[i] - m) / sum;
      d.log[r * n + i] = (row[i] - m) - log_sum;
    }
    std::iota(order.begin(), order.end(), std::int64_t{0});
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(d.top_k), order.end(),
                      [row](std::int64_t a, std::int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    std::copy(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(d.top_k), d.top.begin() + r * d.top_k);
  }
  return d;
}

// A device buffer of `count` elements of T (its users fill all of it before anything reads it).
template <class T>
struct DeviceBuffer {
  T* ptr = nullptr;
  std::size_t count = 0;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr != nullptr) cudaFree(ptr);
  }
  bool allocate(std::size_t n, Tally& tally) {
    count = n;
    return cuda_ok(cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T)), "cudaMalloc", tally);
  }
};

bool all_ff(const void* p, std::size_t bytes) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  return std::all_of(b, b + bytes, [](unsigned char c) { return c == 0xFF; });
}

// The call of one case. Returns its status.
template <class T>
fs::Status call(Op op, const T* x, T* y, std::int64_t* indices, const fs::RowLayout& layout, std::size_t k,
                bool sorted, fs::Algorithm algorithm, cudaStream_t stream) {
  fs::Options options;
  options.algorithm = algorithm;
  switch (op) {
    case Op::kSoftmax: return fs::cuda::softmax(x, y, layout, options, stream);
    case Op::kLogSoftmax: return fs::cuda::log_softmax(x, y, layout, options, stream);
    case Op::kTopk: return fs::cuda::softmax_topk(x, y, indices, layout, k, sorted, options, stream);
  }
  return fs::Status::kUnknownOperation;
}

template <class T>
void run_case(const Data<T>& d, Op op, fs::Algorithm algorithm, Place place, std::size_t k, cudaStream_t stream,
              Tally& tally) {
  const std::size_t rows = d.shape.rows, n = d.shape.n;
  const bool topk = op == Op::kTopk;
  const std::size_t width = topk ? k : n;  // output elements per row
  const std::ptrdiff_t xs = static_cast<std::ptrdiff_t>(n) + (place == Place::kStrided ? kXPad : 0);
  const std::ptrdiff_t ys = static_cast<std::ptrdiff_t>(width) + (place == Place::kStrided ? kYPad : 0);
  const std::size_t offset = place == Place::kMisaligned ? 1 : 0;
  const bool sorted = place != Place::kStrided;  // the strided top-k runs unsorted
  const std::size_t x_count = offset + (rows - 1) * static_cast<std::size_t>(xs) + n + kGuard;
  const std::size_t y_count = offset + (rows - 1) * static_cast<std::size_t>(ys) + width + kGuard;
  char label[256];
  std::snprintf(label, sizeof label, "%s %s %s %zux%zu %s%s", Type<T>::kName, op_name(op),
                fs::algorithm_name(algorithm), rows, n, place_name(place),
                topk ? (" k=" + std::to_string(k) + (sorted ? "" : " unsorted")).c_str() : "");
  ++tally.runs;

  // Input: the rows in place, NaN in the padding.
  std::vector<T> hx(x_count, Type<T>::nan());
  for (std::size_t r = 0; r < rows; ++r) {
    std::copy(d.x.begin() + r * n, d.x.begin() + (r + 1) * n, hx.begin() + offset + r * xs);
  }
  DeviceBuffer<T> dx, dy;
  DeviceBuffer<std::int64_t> di;
  if (!dx.allocate(x_count, tally) || !dy.allocate(y_count, tally)) return;
  if (topk && !di.allocate(y_count, tally)) return;
  if (!cuda_ok(cudaMemcpyAsync(dx.ptr, hx.data(), x_count * sizeof(T), cudaMemcpyHostToDevice, stream),
               "cudaMemcpyAsync", tally) ||
      !cuda_ok(cudaMemsetAsync(dy.ptr, 0xFF, y_count * sizeof(T), stream), "cudaMemsetAsync", tally) ||
      (topk && !cuda_ok(cudaMemsetAsync(di.ptr, 0xFF, y_count * sizeof(std::int64_t), stream), "cudaMemsetAsync",
                        tally))) {
    return;
  }

  fs::RowLayout layout;
  layout.rows = rows;
  layout.n = n;
  layout.x_row_stride = xs;
  layout.y_row_stride = ys;
  const fs::Status status = call(op, dx.ptr + offset, dy.ptr + offset, topk ? di.ptr + offset : nullptr, layout, k,
                                 sorted, algorithm, stream);
  if (status != fs::Status::kOk) {
    ++tally.failures;
    std::printf("FAIL %s: status %s (%s)\n", label, fs::status_message(status), fs::cuda::last_error().c_str());
    cudaStreamSynchronize(stream);
    return;
  }
  std::vector<T> hy(y_count);
  std::vector<std::int64_t> hi(topk ? y_count : 0);
  if (!cuda_ok(cudaMemcpyAsync(hy.data(), dy.ptr, y_count * sizeof(T), cudaMemcpyDeviceToHost, stream),
               "cudaMemcpyAsync", tally) ||
      (topk && !cuda_ok(cudaMemcpyAsync(hi.data(), di.ptr, y_count * sizeof(std::int64_t), cudaMemcpyDeviceToHost,
                                        stream),
                        "cudaMemcpyAsync", tally)) ||
      !cuda_ok(cudaStreamSynchronize(stream), "the call (cudaStreamSynchronize)", tally)) {
    return;
  }

  // Compare.
  long bad = 0;
  double worst = 0;
  const double rtol = Type<T>::kRtol, atol = Type<T>::kAtol;
  auto report = [&](std::size_t r, std::size_t j, const char* what, double got, double want) {
    ++bad;
    if (tally.reported < kMaxReported) {
      ++tally.reported;
      std::printf("FAIL %s: row %zu, element %zu: %s %.9g, expected %.9g\n", label, r, j, what, got, want);
    }
  };
  auto check_value = [&](std::size_t r, std::size_t j, double got, double want, bool log) {
    const double tol = log ? rtol * std::max(std::fabs(want), 1.0) : rtol * std::fabs(want) + atol;
    const double err = std::fabs(got - want);
    if (!(err <= tol)) {  // NaN fails too
      report(r, j, "value", got, want);
    } else {
      worst = std::max(worst, err / tol);
    }
  };
  std::vector<bool> written(y_count, false);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t base = offset + r * static_cast<std::size_t>(ys);
    if (topk) {
      std::vector<std::pair<std::int64_t, double>> got(k), want(k);
      for (std::size_t j = 0; j < k; ++j) {
        got[j] = {hi[base + j], Type<T>::decode(hy[base + j])};
        want[j] = {d.top[r * d.top_k + j], 0.0};
        written[base + j] = true;
      }
      if (!sorted) {
        std::sort(got.begin(), got.end());
        std::sort(want.begin(), want.end());
      }
      for (std::size_t j = 0; j < k; ++j) {
        if (got[j].first != want[j].first) {
          report(r, j, "index", static_cast<double>(got[j].first), static_cast<double>(want[j].first));
          continue;
        }
        check_value(r, j, got[j].second, d.softmax[r * n + static_cast<std::size_t>(want[j].first)], false);
      }
    } else {
      const std::vector<double>& ref = op == Op::kLogSoftmax ? d.log : d.softmax;
      for (std::size_t i = 0; i < n; ++i) {
        check_value(r, i, Type<T>::decode(hy[base + i]), ref[r * n + i], op == Op::kLogSoftmax);
        written[base + i] = true;
      }
    }
  }
  // Nothing outside the rows was written.
  for (std::size_t i = 0; i < y_count; ++i) {
    if (written[i]) continue;
    if (!all_ff(&hy[i], sizeof(T)) || (topk && !all_ff(&hi[i], sizeof(std::int64_t)))) {
      ++bad;
      if (tally.reported < kMaxReported) {
        ++tally.reported;
        std::printf("FAIL %s: element %zu of the output buffer, outside every row, was written\n", label, i);
      }
      break;
    }
  }
  double& w = tally.worst[std::string(Type<T>::kName) + " " + op_name(op)];
  w = std::max(w, worst);
  if (bad > 0) {
    ++tally.failures;
    std::printf("FAIL %s: %ld mismatches\n", label, bad);
  }
}

// Argument errors are refused before anything is enqueued: nothing is written.
void check_refusals(cudaStream_t stream, Tally& tally) {
  const std::size_t n = 100;
  std::vector<float> hx(2 * n, 0.5f);
  DeviceBuffer<float> dx, dy;
  DeviceBuffer<std::int64_t> di;
  if (!dx.allocate(2 * n, tally) || !dy.allocate(2 * n, tally) || !di.allocate(2 * n, tally)) return;
  cuda_ok(cudaMemcpyAsync(dx.ptr, hx.data(), 2 * n * sizeof(float), cudaMemcpyHostToDevice, stream), "copy", tally);
  cuda_ok(cudaMemsetAsync(dy.ptr, 0xFF, 2 * n * sizeof(float), stream), "memset", tally);
  cuda_ok(cudaMemsetAsync(di.ptr, 0xFF, 2 * n * sizeof(std::int64_t), stream), "memset", tally);
  const fs::RowLayout one_row = fs::RowLayout::contiguous(1, n);
  fs::RowLayout spaced = one_row;
  spaced.x_stride = 2;  // elements not adjacent
  fs::Options two_pass;
  two_pass.algorithm = fs::Algorithm::kTwoPass;
  struct Refusal {
    const char* what;
    fs::Status status;
  };
  const Refusal refusals[] = {
      {"softmax_topk with k = 0", fs::cuda::softmax_topk(dx.ptr, dy.ptr, di.ptr, one_row, 0, true, {}, stream)},
      {"softmax_topk with k > n", fs::cuda::softmax_topk(dx.ptr, dy.ptr, di.ptr, one_row, n + 1, true, {}, stream)},
      {"softmax_topk with two_pass", fs::cuda::softmax_topk(dx.ptr, dy.ptr, di.ptr, one_row, 5, true, two_pass, stream)},
      {"softmax with x_stride 2", fs::cuda::softmax(dx.ptr, dy.ptr, spaced, {}, stream)},
      {"log_softmax with x_stride 2", fs::cuda::log_softmax(dx.ptr, dy.ptr, spaced, {}, stream)},
  };
  for (const Refusal& r : refusals) {
    ++tally.runs;
    if (r.status == fs::Status::kOk) {
      ++tally.failures;
      std::printf("FAIL refusal: %s was accepted\n", r.what);
    }
  }
  std::vector<float> hy(2 * n);
  std::vector<std::int64_t> hi(2 * n);
  cuda_ok(cudaMemcpyAsync(hy.data(), dy.ptr, 2 * n * sizeof(float), cudaMemcpyDeviceToHost, stream), "copy", tally);
  cuda_ok(cudaMemcpyAsync(hi.data(), di.ptr, 2 * n * sizeof(std::int64_t), cudaMemcpyDeviceToHost, stream), "copy",
          tally);
  cuda_ok(cudaStreamSynchronize(stream), "cudaStreamSynchronize", tally);
  if (!all_ff(hy.data(), hy.size() * sizeof(float)) || !all_ff(hi.data(), hi.size() * sizeof(std::int64_t))) {
    ++tally.failures;
    std::printf("FAIL refusal: a refused call wrote its output\n");
  }
}

// What the planner says for a few shapes (the kernel family, grid, chunking), for the log.
void print_plans(cudaStream_t, Tally& tally) {
  const Shape shapes[] = {{300, 1025}, {7, 4097}, {7, 70000}, {1, (1u << 20) + 3}};
  for (const Shape& s : shapes) {
    DeviceBuffer<float> buf;
    if (!buf.allocate(s.rows * s.n, tally)) return;
    fs::Call call;
    call.operation = fs::Operation::kSoftmax;
    call.dtype = fs::DataType::kFloat32;
    call.rows = s.rows;
    call.n = s.n;
    call.inputs[0] = {buf.ptr, static_cast<std::ptrdiff_t>(s.n), 1};
    call.outputs[0] = {buf.ptr, static_cast<std::ptrdiff_t>(s.n), 1};
    const fs::Explanation e = fs::cuda::explain(call);
    std::printf("plan float32 softmax %zux%zu:\n%s\n", s.rows, s.n, e.text().c_str());
  }
}

template <class T>
void run_dtype(const std::vector<Shape>& shapes, bool quick, cudaStream_t stream, Tally& tally) {
  std::uint64_t seed = 1;
  for (const Shape& shape : shapes) {
    const Data<T> d = make_data<T>(shape, seed++ * 0x9E3779B97F4A7C15ull);
    // Every layout; --quick: one per shape, in turn, so that the kernel families meet each.
    const Place all[] = {Place::kContiguous, Place::kStrided, Place::kMisaligned};
    const Place* places = quick ? &all[seed % 3] : all;
    const int place_count = quick ? 1 : 3;
    std::vector<std::size_t> ks = {std::min<std::size_t>(5, shape.n)};
    if (!quick) ks = {1, std::min<std::size_t>(5, shape.n), std::min<std::size_t>(kTopMax, shape.n)};
    ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
    for (int p = 0; p < place_count; ++p) {
      const Place place = places[p];
      for (Op op : {Op::kSoftmax, Op::kLogSoftmax}) {
        for (fs::Algorithm algorithm : kAlgorithms) run_case(d, op, algorithm, place, 0, stream, tally);
      }
      for (fs::Algorithm algorithm : kTopkAlgorithms) {
        for (std::size_t k : ks) run_case(d, Op::kTopk, algorithm, place, k, stream, tally);
      }
    }
    std::printf("%s %zux%zu: %ld runs, %ld failed so far\n", Type<T>::kName, shape.rows, shape.n, tally.runs,
                tally.failures);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      std::printf("usage: %s [--quick]\n", argv[0]);
      return 2;
    }
  }
  std::string why;
  if (!fs::cuda::available(&why)) {
    std::printf("device_check: the CUDA backend cannot run here: %s\n", why.c_str());
    return 2;
  }
  const fs::ImplementationInfo impl = fs::cuda::implementation();
  std::printf("implementation %s (%s): %s; %zu CUDA kernels in the catalogue\n", impl.name.c_str(),
              impl.backend.c_str(), impl.description.c_str(), fs::cuda::kernels().size());

  Tally tally;
  cudaStream_t stream = nullptr;
  if (!cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags", tally)) {
    return 1;
  }
  print_plans(stream, tally);
  check_refusals(stream, tally);

  const std::size_t big = (std::size_t{1} << 20) + 3;
  std::vector<Shape> shapes;
  if (quick) {
    shapes = {{1, 1}, {7, 33}, {1, 1025}, {7, 4097}, {1, 70000}, {1, big}};
  } else {
    for (std::size_t n : {std::size_t{1}, std::size_t{31}, std::size_t{33}, std::size_t{1025}, std::size_t{4097},
                          std::size_t{70000}, big}) {
      shapes.push_back({1, n});
      shapes.push_back({7, n});
      if (n <= 4097) shapes.push_back({300, n});
    }
  }
  run_dtype<float>(shapes, quick, stream, tally);
  run_dtype<fs::Float16>(shapes, quick, stream, tally);
  run_dtype<fs::BFloat16>(shapes, quick, stream, tally);

  cuda_ok(cudaStreamDestroy(stream), "cudaStreamDestroy", tally);
  std::printf("\nworst error / tolerance per dtype and operation (passing elements):\n");
  for (const auto& [name, worst] : tally.worst) std::printf("  %-26s %.3f\n", name.c_str(), worst);
  std::printf("device_check%s: %ld runs, %ld failed\n", quick ? " --quick" : "", tally.runs, tally.failures);
  return tally.failures == 0 ? 0 : 1;
}
