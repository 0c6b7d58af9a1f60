// The CUDA backend as a C++ user reaches it: fastsoftmax/cuda.h and fastsoftmax::fastsoftmax_cuda
// from the same find_package. Without a GPU (CI), it checks what must hold there: the backend
// says why it is unavailable, explain() plans device calls for the reference device, argument
// errors come before any device access, and a call returns kDeviceError rather than crashing.
#include <fastsoftmax/cuda.h>

#include <cstdio>
#include <string>

namespace fs = fastsoftmax;

int main() {
  int failures = 0;
  auto check = [&](bool ok, const char* what) {
    if (!ok) {
      std::printf("FAILED: %s\n", what);
      ++failures;
    }
  };
  std::string reason;
  const bool available = fs::cuda::available(&reason);
  std::printf("cuda available: %d (%s)\n", available ? 1 : 0, reason.c_str());
  check(available || !reason.empty(), "an unavailable backend says why");
  check(fs::cuda::implementation().name == "cuda", "the implementation is named cuda");
  check(!fs::cuda::kernels().empty(), "the CUDA kernels are listed");

  fs::Call call;
  call.rows = 8;
  call.n = 128256;
  float* device_x = reinterpret_cast<float*>(0x10000);  // explain() reads only the addresses
  call.inputs[0] = {device_x, 128256, 1};
  call.outputs[0] = {device_x, 128256, 1};
  const fs::Explanation e = fs::cuda::explain(call);
  std::printf("%s", e.text().c_str());
  check(e.status == fs::Status::kOk && e.schedule == "split rows", "8 x 128256 runs as split rows");

  call.dtype = fs::DataType::kFloat64;
  check(fs::cuda::run(call) == fs::Status::kDeviceDtype, "float64 is refused");
  check(fs::cuda::last_error().find("float64") != std::string::npos, "the refusal names float64");

  if (!available) {
    float x[4] = {1, 2, 3, 4}, y[4] = {};
    const fs::Status s = fs::cuda::softmax(x, y, fs::RowLayout::contiguous(1, 4));
    check(s == fs::Status::kDeviceError, "a call without a device returns kDeviceError");
    std::printf("no device: %s\n", fs::cuda::last_error().c_str());
  }
  if (failures == 0) std::printf("cuda consumer ok\n");
  return failures == 0 ? 0 : 1;
}
