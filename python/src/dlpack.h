// DLPack for the bindings: the ABI structs of dlpack.h (v1.x, versioned and unversioned managed
// tensors; pybind11 has none), and a consumer that turns a capsule from `__dlpack__` or a
// `__cuda_array_interface__` dict into one view of the array. Written from the DLPack
// specification (https://dmlc.github.io/dlpack/latest/), field for field.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fastsoftmax/fastsoftmax.h"

namespace fastsoftmax::python {

namespace py = pybind11;

namespace dlpack {

enum DeviceType : std::int32_t {
  kDLCPU = 1,
  kDLCUDA = 2,
  kDLCUDAHost = 3,
  kDLCUDAManaged = 13,
};
enum TypeCode : std::uint8_t {
  kDLInt = 0,
  kDLUInt = 1,
  kDLFloat = 2,
  kDLBfloat = 4,
  kDLBool = 6,
};
struct Device {
  std::int32_t device_type;
  std::int32_t device_id;
};
struct DataType {
  std::uint8_t code;
  std::uint8_t bits;
  std::uint16_t lanes;
};
struct Tensor {
  void* data;
  Device device;
  std::int32_t ndim;
  DataType dtype;
  std::int64_t* shape;
  std::int64_t* strides;  // elements; null: C-contiguous
  std::uint64_t byte_offset;
};
struct ManagedTensor {
  Tensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(ManagedTensor* self);
};
struct PackVersion {
  std::uint32_t major;
  std::uint32_t minor;
};
constexpr std::uint64_t kFlagReadOnly = 1;
struct ManagedTensorVersioned {
  PackVersion version;
  void* manager_ctx;
  void (*deleter)(ManagedTensorVersioned* self);
  std::uint64_t flags;
  Tensor dl_tensor;
};

}  // namespace dlpack

// An array as the library needs it: where (device type and id), its element type, shape and
// strides in elements. Holds the consumed capsule's tensor until destroyed (then its deleter runs).
class ArrayView {
 public:
  ArrayView() = default;
  ArrayView(const ArrayView&) = delete;
  ArrayView& operator=(const ArrayView&) = delete;
  ArrayView(ArrayView&& other) noexcept;
  ArrayView& operator=(ArrayView&& other) noexcept;
  ~ArrayView();

  // From a capsule of `__dlpack__` ("dltensor" or "dltensor_versioned"), consumed (renamed
  // "used_..."), as the protocol asks. `name` names the argument in errors.
  static ArrayView from_capsule(py::capsule capsule, const char* name);
  // From `__cuda_array_interface__` (versions 2 and 3): float32, float16, float64, int64.
  static ArrayView from_cuda_array_interface(py::dict interface, const char* name);

  void* data = nullptr;
  std::int32_t device_type = 0;
  std::int32_t device_id = 0;
  // "float32", "float16", "bfloat16", "float64", "int8".."int64", "uint8".."uint64", "bool", or a
  // sentence naming the DLPack type code
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> strides;  // elements
  bool read_only = false;

 private:
  dlpack::ManagedTensor* managed_ = nullptr;
  dlpack::ManagedTensorVersioned* versioned_ = nullptr;
};

// The library's element type for a view's dtype, or ValueError naming the argument.
DataType library_dtype(const ArrayView& view, const char* name);

}  // namespace fastsoftmax::python
