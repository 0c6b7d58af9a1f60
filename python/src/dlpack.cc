// DLPack capsules and __cuda_array_interface__ dicts to ArrayViews.
#include "dlpack.h"

#include <utility>

namespace fastsoftmax::python {
namespace {

std::string dtype_of(const dlpack::DataType& t) {
  if (t.lanes == 1) {
    if (t.code == dlpack::kDLFloat && t.bits == 32) return "float32";
    if (t.code == dlpack::kDLFloat && t.bits == 16) return "float16";
    if (t.code == dlpack::kDLFloat && t.bits == 64) return "float64";
    if (t.code == dlpack::kDLBfloat && t.bits == 16) return "bfloat16";
    const bool integer_width = t.bits == 8 || t.bits == 16 || t.bits == 32 || t.bits == 64;
    if (t.code == dlpack::kDLInt && integer_width) return "int" + std::to_string(t.bits);
    if (t.code == dlpack::kDLUInt && integer_width) return "uint" + std::to_string(t.bits);
    if (t.code == dlpack::kDLBool && t.bits == 8) return "bool";
  }
  return "DLPack type code " + std::to_string(t.code) + " with " + std::to_string(t.bits) + " bits and " +
         std::to_string(t.lanes) + " lanes";
}

void fill(ArrayView& view, const dlpack::Tensor& t) {
  view.data = static_cast<char*>(t.data) + t.byte_offset;
  view.device_type = t.device.device_type;
  view.device_id = t.device.device_id;
  view.dtype = dtype_of(t.dtype);
  view.shape.assign(t.shape, t.shape + t.ndim);
  view.strides.resize(t.ndim);
  std::int64_t step = 1;
  for (int d = t.ndim - 1; d >= 0; --d) {  // null strides: C-contiguous
    view.strides[d] = t.strides != nullptr ? t.strides[d] : step;
    step *= t.shape[d];
  }
}

}  // namespace

ArrayView::ArrayView(ArrayView&& other) noexcept { *this = std::move(other); }

ArrayView& ArrayView::operator=(ArrayView&& other) noexcept {
  std::swap(data, other.data);
  std::swap(device_type, other.device_type);
  std::swap(device_id, other.device_id);
  std::swap(dtype, other.dtype);
  std::swap(shape, other.shape);
  std::swap(strides, other.strides);
  std::swap(read_only, other.read_only);
  std::swap(managed_, other.managed_);
  std::swap(versioned_, other.versioned_);
  return *this;
}

ArrayView::~ArrayView() {
  if (managed_ != nullptr && managed_->deleter != nullptr) managed_->deleter(managed_);
  if (versioned_ != nullptr && versioned_->deleter != nullptr) versioned_->deleter(versioned_);
}

ArrayView ArrayView::from_capsule(py::capsule capsule, const char* name) {
  ArrayView view;
  const char* capsule_name = PyCapsule_GetName(capsule.ptr());
  const std::string kind = capsule_name != nullptr ? capsule_name : "";
  if (kind == "dltensor_versioned") {
    auto* t = static_cast<dlpack::ManagedTensorVersioned*>(PyCapsule_GetPointer(capsule.ptr(), "dltensor_versioned"));
    if (t == nullptr) throw py::error_already_set();
    if (t->version.major != 1) {
      throw py::value_error(std::string(name) + ": DLPack version " + std::to_string(t->version.major) +
                            " is not supported (this library reads version 1)");
    }
    fill(view, t->dl_tensor);
    view.read_only = (t->flags & dlpack::kFlagReadOnly) != 0;
    view.versioned_ = t;
    PyCapsule_SetName(capsule.ptr(), "used_dltensor_versioned");
  } else if (kind == "dltensor") {
    auto* t = static_cast<dlpack::ManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
    if (t == nullptr) throw py::error_already_set();
    fill(view, t->dl_tensor);
    view.managed_ = t;
    PyCapsule_SetName(capsule.ptr(), "used_dltensor");
  } else {
    throw py::type_error(std::string(name) + ": expected a DLPack capsule, got a capsule named '" + kind + "'");
  }
  return view;
}

ArrayView ArrayView::from_cuda_array_interface(py::dict interface, const char* name) {
  ArrayView view;
  const py::tuple data = interface["data"].cast<py::tuple>();
  view.data = reinterpret_cast<void*>(data[0].cast<std::uintptr_t>());
  view.read_only = data[1].cast<bool>();
  view.device_type = dlpack::kDLCUDA;
  view.device_id = -1;  // the pointer's own device (the backend checks it)
  const std::string typestr = interface["typestr"].cast<std::string>();
  std::size_t item = 0;
  if (typestr == "<f4") {
    view.dtype = "float32", item = 4;
  } else if (typestr == "<f2") {
    view.dtype = "float16", item = 2;
  } else if (typestr == "<f8") {
    view.dtype = "float64", item = 8;
  } else if (typestr == "<i8") {
    view.dtype = "int64", item = 8;
  } else {
    throw py::value_error(std::string(name) + ": __cuda_array_interface__ typestr '" + typestr +
                          "' is not supported (float32 or float16; bfloat16 only through DLPack)");
  }
  for (py::handle d : interface["shape"].cast<py::tuple>()) view.shape.push_back(d.cast<std::int64_t>());
  view.strides.resize(view.shape.size());
  const py::object strides = interface.contains("strides") ? interface["strides"] : py::none();
  std::int64_t step = 1;
  for (int d = static_cast<int>(view.shape.size()) - 1; d >= 0; --d) {
    if (strides.is_none()) {
      view.strides[d] = step;
    } else {
      const std::int64_t bytes = strides.cast<py::tuple>()[d].cast<std::int64_t>();
      if (bytes % static_cast<std::int64_t>(item) != 0) {
        throw py::value_error(std::string(name) + ": strides that are not whole elements are not supported");
      }
      view.strides[d] = bytes / static_cast<std::int64_t>(item);
    }
    step *= view.shape[d];
  }
  return view;
}

DataType library_dtype(const ArrayView& view, const char* name) {
  if (view.dtype == "float32") return DataType::kFloat32;
  if (view.dtype == "float16") return DataType::kFloat16;
  if (view.dtype == "bfloat16") return DataType::kBFloat16;
  if (view.dtype == "float64") return DataType::kFloat64;
  throw py::value_error(std::string(name) + " has dtype " + view.dtype +
                        "; expected float32, float16, bfloat16 or float64");
}

}  // namespace fastsoftmax::python
