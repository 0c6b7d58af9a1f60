// NumPy arrays to the library's Calls and back (arrays.h).
#include "arrays.h"

#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "arguments.h"
#include "dlpack.h"

namespace fastsoftmax::python {
namespace {

constexpr int kAlignedFlag = 0x0100;  // NPY_ARRAY_ALIGNED

// NumPy reports the native byte order as '=' ('<' or '>' only for the other one), and '|' where
// there is none.
bool native_byte_order(char byteorder) { return byteorder == '=' || byteorder == '|'; }

bool same_dtype(const py::dtype& a, const py::dtype& b) {
  return a.is(b) || py::detail::npy_api::get().PyArray_EquivTypes_(a.ptr(), b.ptr());
}

// The library's element type of a NumPy dtype, if the kernels read it as it is.
bool native_element(const py::dtype& dtype, DataType* element) {
  if (dtype.kind() == 'f' && native_byte_order(dtype.byteorder())) {
    switch (dtype.itemsize()) {
      case 4: *element = DataType::kFloat32; return true;
      case 8: *element = DataType::kFloat64; return true;
      case 2: *element = DataType::kFloat16; return true;
      default: return false;
    }
  }
  // ml_dtypes.bfloat16, the bfloat16 of JAX and of PyTorch's NumPy interchange.
  if (dtype.itemsize() == 2 && dtype.kind() == 'V' && py::str(dtype.attr("name")).cast<std::string>() == "bfloat16") {
    *element = DataType::kBFloat16;
    return true;
  }
  return false;
}

bool aligned(const py::array& a) { return (a.flags() & kAlignedFlag) != 0; }

// ---- dtypes, and conversions between them ------------------------------------------------------

// How the values of an element type are held: bfloat16 as ml_dtypes.bfloat16, or as uint16 bits
// (`as_bits`: for other frameworks' arrays, and where ml_dtypes is not installed for them).
py::dtype storage_dtype(DataType dtype, bool as_bits) {
  switch (dtype) {
    case DataType::kFloat32: return py::dtype::of<float>();
    case DataType::kFloat64: return py::dtype::of<double>();
    case DataType::kFloat16: return py::dtype("float16");
    case DataType::kBFloat16: break;
  }
  if (as_bits) return py::dtype::of<std::uint16_t>();
  try {
    return py::dtype::from_args(py::module_::import("ml_dtypes").attr("bfloat16"));
  } catch (py::error_already_set&) {
    throw py::type_error("a bfloat16 NumPy array needs the ml_dtypes package (pip install ml_dtypes)");
  }
}

// Widening (safe) casts: float16 and bfloat16 below float32 below float64.
int float_rank(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat64: return 2;
    case DataType::kFloat32: return 1;
    default: return 0;
  }
}
bool can_cast(DataType from, DataType to, Casting casting) {
  if (from == to) return true;
  switch (casting) {
    case Casting::kNo:
    case Casting::kEquiv: return false;
    case Casting::kSafe: return float_rank(from) < float_rank(to);
    default: return true;
  }
}

// One element's value, and a value stored as an element (rounded to nearest even).
double value_at(const char* p, DataType dtype) {
  std::uint16_t bits;
  switch (dtype) {
    case DataType::kFloat32: { float v; std::memcpy(&v, p, sizeof v); return v; }
    case DataType::kFloat64: { double v; std::memcpy(&v, p, sizeof v); return v; }
    case DataType::kFloat16: std::memcpy(&bits, p, sizeof bits); return to_float(Float16{bits});
    case DataType::kBFloat16: std::memcpy(&bits, p, sizeof bits); return to_float(BFloat16{bits});
  }
  return 0;
}
// `value` as a float rounded to odd (toward zero, the last bit set when inexact): a float that
// rounds to a 16-bit type exactly as `value` itself would, so float64 to float16 or bfloat16 is
// rounded once, not twice.
float rounded_to_odd(double value) {
  float f = static_cast<float>(value);
  if (static_cast<double>(f) == value || std::isnan(value)) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(value)) f = std::nextafter(f, 0.0f);
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  bits |= 1u;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
void store(char* p, DataType dtype, double value) {
  switch (dtype) {
    case DataType::kFloat32: { const float v = static_cast<float>(value); std::memcpy(p, &v, sizeof v); return; }
    case DataType::kFloat64: std::memcpy(p, &value, sizeof value); return;
    case DataType::kFloat16: { const Float16 v = to_float16(rounded_to_odd(value)); std::memcpy(p, &v, 2); return; }
    case DataType::kBFloat16: { const BFloat16 v = to_bfloat16(rounded_to_odd(value)); std::memcpy(p, &v, 2); return; }
  }
}

// `a`'s values as a new C-contiguous array of element type `to` (NumPy's astype where NumPy knows
// both types, else element by element with the library's conversions).
Input converted(const Input& a, DataType to, bool as_bits) {
  const py::array source = py::module_::import("numpy").attr("ascontiguousarray")(a.array);
  const py::dtype storage = storage_dtype(to, as_bits);
  if (a.dtype != DataType::kBFloat16 && to != DataType::kBFloat16) {
    return {source.attr("astype")(storage), to, as_bits};
  }
  py::array result(storage, std::vector<py::ssize_t>(source.shape(), source.shape() + source.ndim()));
  const char* from = static_cast<const char*>(source.data());
  char* into = static_cast<char*>(result.mutable_data());
  for (py::ssize_t i = 0; i < source.size(); ++i) {
    store(into + i * result.itemsize(), to, value_at(from + i * source.itemsize(), a.dtype));
  }
  return {result, to, as_bits};
}

// bfloat16 arrays as their bits (uint16), so that NumPy copies them whatever holds them.
py::array bits_of(const Input& a) {
  return a.dtype == DataType::kBFloat16 ? py::array(a.array.attr("view")(py::dtype::of<std::uint16_t>())) : a.array;
}

// A CPU array of another framework, from its DLPack capsule (consumed), as a NumPy array over
// its memory that keeps the capsule's tensor alive; read-only where the producer says so.
// `element` is its library type; false for integer and bool arrays (their values still read).
Input dlpack_array(py::handle capsule, const char* name, bool* is_float) {
  auto view = std::make_unique<ArrayView>(ArrayView::from_capsule(py::reinterpret_borrow<py::capsule>(capsule), name));
  if (view->device_type != dlpack::kDLCPU && view->device_type != dlpack::kDLCUDAHost) {
    throw py::value_error(std::string(name) + " is not in CPU memory (DLPack device type " +
                          std::to_string(view->device_type) + ")");
  }
  Input input;
  input.from_dlpack = true;
  *is_float = true;
  py::dtype storage;
  if (view->dtype == "float32" || view->dtype == "float64" || view->dtype == "float16" || view->dtype == "bfloat16") {
    input.dtype = library_dtype(*view, name);
    storage = storage_dtype(input.dtype, /*as_bits=*/true);
  } else if (view->dtype.rfind("int", 0) == 0 || view->dtype.rfind("uint", 0) == 0 || view->dtype == "bool") {
    *is_float = false;
    storage = py::dtype(view->dtype);
  } else {
    throw py::type_error(std::string(name) + " has " + view->dtype +
                         "; expected float32, float64, float16, bfloat16, an integer or bool dtype");
  }
  std::vector<py::ssize_t> shape(view->shape.begin(), view->shape.end()), strides;
  for (std::int64_t s : view->strides) strides.push_back(static_cast<py::ssize_t>(s) * storage.itemsize());
  void* data = view->data;
  const bool read_only = view->read_only;
  const py::capsule owner(view.release(), [](void* p) { delete static_cast<ArrayView*>(p); });
  input.array = py::array(storage, shape, strides, data, owner);
  constexpr int kWriteableFlag = 0x0400;  // NPY_ARRAY_WRITEABLE
  if (read_only) py::detail::array_proxy(input.array.ptr())->flags &= ~kWriteableFlag;
  return input;
}

// The addresses an array's elements span, [first, last) in bytes.
struct Extent {
  std::uintptr_t first, last;
};
Extent extent_of(const py::array& a) {
  auto first = reinterpret_cast<std::uintptr_t>(a.data());
  auto last = first + static_cast<std::uintptr_t>(a.itemsize());
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    const py::ssize_t span = (a.shape(d) - 1) * a.strides(d);
    if (span < 0) first -= static_cast<std::uintptr_t>(-span);
    if (span > 0) last += static_cast<std::uintptr_t>(span);
  }
  return {first, last};
}
// numpy.may_share_memory: whether the extents overlap (empty arrays never do).
bool may_share_memory(const py::array& a, const py::array& b) {
  if (a.size() == 0 || b.size() == 0) return false;
  const Extent ea = extent_of(a), eb = extent_of(b);
  return ea.first < eb.last && eb.first < ea.last;
}
bool same_view(const py::array& a, const py::array& b) {
  if (a.data() != b.data() || a.ndim() != b.ndim() || !same_dtype(a.dtype(), b.dtype())) return false;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (a.shape(d) != b.shape(d) || a.strides(d) != b.strides(d)) return false;
  }
  return true;
}

std::vector<py::ssize_t> shape_of(const py::array& a) { return {a.shape(), a.shape() + a.ndim()}; }

std::string shape_text(const std::vector<py::ssize_t>& shape) {
  return py::str(py::tuple(py::cast(shape)));
}

// A new array of `shape` whose axis `axis` is innermost (contiguous) and whose other axes are in
// C order: what the kernels write fastest, returned to the caller in the caller's axis order.
py::array axis_last_array(const py::dtype& dtype, const std::vector<py::ssize_t>& shape, int axis) {
  const int ndim = static_cast<int>(shape.size());
  std::vector<int> order;
  for (int d = 0; d < ndim; ++d) {
    if (d != axis) order.push_back(d);
  }
  order.push_back(axis);
  std::vector<py::ssize_t> strides(shape.size());
  py::ssize_t stride = dtype.itemsize();
  for (int i = ndim - 1; i >= 0; --i) {
    strides[order[i]] = stride;
    stride *= std::max<py::ssize_t>(shape[order[i]], 1);
  }
  return py::array(dtype, shape, strides);
}

// Whether each element of `a` has its own memory: its axes sorted by step, each step reaches
// beyond everything the smaller ones span (conservative, as the library's own check).
bool distinct_elements(const py::array& a) {
  if (a.size() == 0) return true;
  std::vector<std::pair<py::ssize_t, py::ssize_t>> steps;  // (|stride|, length) of axes longer than 1
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (a.shape(d) > 1) steps.emplace_back(std::abs(a.strides(d)), a.shape(d));
  }
  std::sort(steps.begin(), steps.end());
  py::ssize_t span = a.itemsize();
  for (const auto& [step, length] : steps) {
    if (step < span) return false;
    span = step * (length - 1) + span;
  }
  return true;
}

// out= as the result: an ndarray, or a DLPack capsule of another framework's CPU array, of x's
// shape and a float dtype, writable, each element its own.
Input out_array(py::handle out, const std::vector<py::ssize_t>& shape) {
  Input o;
  bool is_float = false;
  if (PyCapsule_CheckExact(out.ptr())) {
    o = dlpack_array(out, "out", &is_float);
  } else if (py::isinstance<py::array>(out)) {
    o.array = py::reinterpret_borrow<py::array>(out);
    is_float = native_element(o.array.dtype(), &o.dtype);
  } else {
    throw py::type_error("out must be an array (numpy.ndarray, or a CPU array of another framework that exports "
                         "DLPack), got " + std::string(py::str(py::type::handle_of(out).attr("__name__"))));
  }
  if (!is_float) {
    throw py::type_error("out has dtype " + std::string(py::str(o.array.dtype())) +
                         "; expected float32, float64, float16 or bfloat16");
  }
  if (shape_of(o.array) != shape) {
    throw py::value_error("out has shape " + shape_text(shape_of(o.array)) + "; expected " + shape_text(shape) +
                          ", the shape of x");
  }
  if (!o.array.writeable()) throw py::value_error("out is read-only; expected a writable array");
  if (!distinct_elements(o.array)) {
    throw py::value_error("out has elements that share memory (a stride of 0, e.g. a broadcast view, or axes whose "
                          "steps overlap): several results would be written to one element");
  }
  return o;
}

// Strides of `a` in elements; ValueError if some stride is not a whole number of elements.
std::vector<std::ptrdiff_t> element_strides(const py::array& a) {
  std::vector<std::ptrdiff_t> strides;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (a.strides(d) % a.itemsize() != 0) throw py::value_error("array strides must be multiples of the item size");
    strides.push_back(a.strides(d) / a.itemsize());
  }
  return strides;
}

// Calls fn(call) for each library call covering the prepared operation: its axis moved last (a
// permutation of strides, no copy), the axis before it the rows; outer axes laid out as more rows
// (a C-contiguous batch of matrices, say) join the rows, so one call sees, and can share among
// threads, all of them; the remaining outer axes are walked here. Stops when fn returns false.
template <class Fn>
void for_each_call(const Prepared& p, Fn&& fn) {
  const py::array& x = p.x;
  const int ndim = static_cast<int>(x.ndim());
  std::vector<int> order;
  for (int d = 0; d < ndim; ++d) {
    if (d != p.axis) order.push_back(d);
  }
  order.push_back(p.axis);

  // Operand 0 is x, then the other inputs, the mask and the outputs (those present), each with
  // its place in the call; their strides in the moved-axis order.
  Call call = p.call;
  std::vector<py::array> operands = {x};
  std::vector<Operand*> places = {&call.inputs[0]};
  for (std::size_t i = 0; i < p.inputs.size(); ++i) {
    if (!p.inputs[i].is_none()) {
      operands.push_back(p.inputs[i]);
      places.push_back(&call.inputs[i + 1]);
    }
  }
  if (!p.mask.is_none()) {
    operands.push_back(p.mask);
    places.push_back(&call.mask);
  }
  for (std::size_t i = 0; i < p.outputs.size(); ++i) {
    operands.push_back(p.outputs[i]);
    places.push_back(&call.outputs[i]);
  }
  const std::size_t count = operands.size();
  std::vector<std::vector<std::ptrdiff_t>> strides(count);
  for (std::size_t o = 0; o < count; ++o) {
    const std::vector<std::ptrdiff_t> own = element_strides(operands[o]);
    for (int d : order) strides[o].push_back(own[d]);
  }
  std::vector<std::size_t> shape;
  for (int d : order) shape.push_back(static_cast<std::size_t>(x.shape(d)));

  call.n = shape[ndim - 1];
  call.rows = ndim >= 2 ? shape[ndim - 2] : 1;
  std::vector<std::ptrdiff_t> row_stride(count, 0);
  for (std::size_t o = 0; o < count && ndim >= 2; ++o) row_stride[o] = strides[o][ndim - 2];
  int outer_dims = ndim >= 2 ? ndim - 2 : 0;
  while (outer_dims > 0) {
    const int d = outer_dims - 1;
    bool joins = true;
    for (std::size_t o = 0; o < count; ++o) {
      joins = joins && strides[o][d] == static_cast<std::ptrdiff_t>(call.rows) * row_stride[o];
    }
    if (!joins) break;
    call.rows *= shape[d];
    --outer_dims;
  }
  std::size_t outer_count = 1;
  for (int d = 0; d < outer_dims; ++d) outer_count *= shape[d];

  std::vector<std::size_t> index(outer_dims, 0);
  for (std::size_t k = 0; k < outer_count; ++k) {
    for (std::size_t o = 0; o < count; ++o) {
      std::ptrdiff_t offset = 0;
      for (int d = 0; d < outer_dims; ++d) offset += static_cast<std::ptrdiff_t>(index[d]) * strides[o][d];
      const char* base = static_cast<const char*>(operands[o].data()) + offset * operands[o].itemsize();
      *places[o] = {base, row_stride[o], strides[o][ndim - 1]};
    }
    if (!fn(call)) return;
    // Advance the multi-index over the outer axes, last axis fastest.
    for (int d = outer_dims - 1; d >= 0; --d) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
}

// The operation's call with no elements: the library still validates its options.
Call empty_call(const Prepared& p) {
  Call call = p.call;
  call.rows = 0;
  call.n = static_cast<std::size_t>(p.x.shape(p.axis));
  return call;
}

// Whether the operation has no elements to compute (or no outputs: a refused top-k).
bool nothing_to_compute(const Prepared& p) {
  return p.outputs.empty() || p.x.size() == 0 || p.outputs[0].size() == 0;
}

py::module_ numpy() { return py::module_::import("numpy"); }

// An array of x's shape without `axis` (one element per row) as a view of x's shape: the axis
// put back with stride 0. Its elements are written through the view's pointers.
py::array per_row_view(const py::array& per_row, int axis, const py::array& x) {
  return numpy().attr("broadcast_to")(numpy().attr("expand_dims")(per_row, axis), x.attr("shape"));
}

// States of shape S + (kStateFields,), float64 with the last axis contiguous, as one element per
// state (the library's NormalizerState), of shape S.
py::array state_elements(const py::array& states) {
  const py::dtype state = py::dtype::from_args(py::make_tuple(numpy().attr("void"), sizeof(NormalizerState)));
  py::array elements = states.attr("view")(state);
  return elements.attr("squeeze")(-1);
}

std::vector<py::ssize_t> without_axis(const py::array& x, int axis) {
  std::vector<py::ssize_t> shape = shape_of(x);
  shape.erase(shape.begin() + axis);
  return shape;
}

Prepared prepared_call(Operation operation, const Input& x, const Options& options, int axis) {
  Prepared p;
  p.inputs.resize(Call::kMaxInputs - 1, py::none());
  p.call.operation = operation;
  p.call.dtype = x.dtype;
  p.call.options = options;
  p.x = x.array;
  if (p.x.ndim() == 0) p.x = p.x.reshape(std::vector<py::ssize_t>{1});  // a row of one element
  p.axis = axis;
  return p;
}

}  // namespace

Input input_array(py::handle x, const char* function) {
  py::array array;
  bool from_dlpack = false;
  if (PyCapsule_CheckExact(x.ptr())) {
    bool is_float = false;
    Input input = dlpack_array(x, "x", &is_float);
    if (is_float) {
      if (!aligned(input.array)) input = converted(input, input.dtype, /*as_bits=*/true);
      return input;
    }
    array = input.array;  // integers and bools: converted below, as NumPy's are
    from_dlpack = true;
  } else {
    array = py::isinstance<py::array>(x) ? py::reinterpret_borrow<py::array>(x)
                                         : py::module_::import("numpy").attr("asarray")(x).cast<py::array>();
  }
  DataType element;
  if (native_element(array.dtype(), &element)) {
    if (!aligned(array)) array = array.attr("astype")(array.dtype(), py::arg("order") = "K");
    return {array, element};
  }
  const py::dtype dtype = array.dtype();
  py::dtype computable;
  if (dtype.kind() == 'f' && (dtype.itemsize() == 2 || dtype.itemsize() == 4 || dtype.itemsize() == 8)) {
    computable = dtype.attr("newbyteorder")("=");  // a float in the other byte order
  } else if (dtype.kind() == 'b' || dtype.kind() == 'i' || dtype.kind() == 'u') {
    computable = py::dtype::of<double>();
  } else {
    throw py::type_error(std::string(function) + " does not support dtype " + std::string(py::str(dtype)) +
                         "; use float16, bfloat16 (ml_dtypes), float32, float64, integer or bool");
  }
  array = array.attr("astype")(computable, py::arg("order") = "K");
  native_element(array.dtype(), &element);
  return {array, element, from_dlpack};
}

Casting casting_argument(py::handle casting) {
  static const char* const kNames[] = {"no", "equiv", "safe", "same_kind", "unsafe"};
  if (py::isinstance<py::str>(casting)) {
    const std::string name = casting.cast<std::string>();
    for (int i = 0; i < 5; ++i) {
      if (name == kNames[i]) return static_cast<Casting>(i);
    }
  }
  throw py::value_error("casting must be one of 'no', 'equiv', 'safe', 'same_kind', 'unsafe', got " +
                        std::string(py::repr(casting)));
}

bool dtype_argument(py::handle dtype, DataType* element) {
  if (dtype.is_none()) return false;
  const std::string name = py::isinstance<py::str>(dtype) ? dtype.cast<std::string>() : "";
  for (DataType candidate : {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16, DataType::kBFloat16}) {
    if (name == dtype_name(candidate)) {
      *element = candidate;
      return true;
    }
  }
  throw py::type_error("dtype must be None, float32, float64, float16 or bfloat16, got " +
                       std::string(py::repr(dtype)));
}

RowwiseResult prepare_rowwise(Operation operation, Input x, py::handle axis, py::handle out, const Options& options,
                              bool has_dtype, DataType dtype, Casting casting) {
  const int ndim = static_cast<int>(x.array.ndim());
  const int along = axis_argument(axis, std::max(ndim, 1));
  const std::vector<py::ssize_t> shape = shape_of(x.array);
  // The element type the kernels compute in: dtype=, else x's, else a wider out='s (a float16 x
  // into a float32 out is computed in float32).
  Input result;
  const bool has_out = !out.is_none();
  if (has_out) result = out_array(out, shape);
  DataType compute = x.dtype;
  if (has_dtype) {
    compute = dtype;
  } else if (has_out && float_rank(x.dtype) < float_rank(result.dtype) && can_cast(x.dtype, result.dtype, casting)) {
    compute = result.dtype;
  }
  if (has_out && !can_cast(compute, result.dtype, casting)) {
    static const char* const kNames[] = {"no", "equiv", "safe", "same_kind", "unsafe"};
    throw py::type_error(std::string("out has dtype ") + dtype_name(result.dtype) + " but the result is " +
                         dtype_name(compute) + ", which casting='" + kNames[static_cast<int>(casting)] +
                         "' does not allow" +
                         (float_rank(compute) > float_rank(result.dtype) ? " (it would round the result); pass "
                                                                          "casting='same_kind' to allow it" : ""));
  }
  if (compute != x.dtype) x = converted(x, compute, x.from_dlpack || compute != DataType::kBFloat16);
  if (!has_out) {
    result = {py::array(storage_dtype(compute, x.from_dlpack), shape), compute, x.from_dlpack};
  }
  Prepared p = prepared_call(operation, x, options, along);
  const py::array y = ndim == 0 ? result.array.reshape(std::vector<py::ssize_t>{1}) : result.array;
  // The kernels write y directly when it is x itself or apart from x, aligned and of the computed
  // dtype; otherwise a temporary, copied (and converted) over afterwards.
  const bool direct = result.dtype == compute && aligned(y) && (!may_share_memory(p.x, y) || same_view(p.x, y));
  p.outputs = {direct ? y : axis_last_array(x.array.dtype(), shape_of(p.x), p.axis)};
  return {result.array, result.dtype, p, !direct};
}

void finish_rowwise(const RowwiseResult& call) {
  if (!call.through_temporary) return;
  Input temporary{call.prepared.outputs[0], call.prepared.call.dtype};
  if (temporary.dtype != call.result_dtype) temporary = converted(temporary, call.result_dtype, /*as_bits=*/true);
  if (call.result.ndim() == 0) temporary.array = temporary.array.reshape(std::vector<py::ssize_t>{});
  bits_of({call.result, call.result_dtype}).attr("__setitem__")(py::ellipsis(), bits_of(temporary));
}

TopkResult prepare_topk(const Input& x, std::int64_t k, py::handle axis, bool sorted, const Options& options) {
  const int ndim = static_cast<int>(x.array.ndim());
  if (ndim == 0) throw py::value_error("softmax_topk needs an array of at least one dimension");
  Prepared p = prepared_call(Operation::kSoftmaxTopk, x, options, axis_argument(axis, ndim));
  p.call.k = k;
  p.call.sorted = sorted;
  // k is checked (with every option) before the results, whose shape it is, are made: a refused
  // call has none, and run() and explain() give the library's reason.
  if (fastsoftmax::run(empty_call(p)) != Status::kOk) return {py::array(), py::array(), p};
  std::vector<py::ssize_t> shape = shape_of(x.array);
  shape[p.axis] = static_cast<py::ssize_t>(k);
  const py::array values = axis_last_array(x.array.dtype(), shape, p.axis);
  const py::array indices = axis_last_array(py::dtype::of<std::int64_t>(), shape, p.axis);
  p.outputs = {values, indices};
  return {values, indices, p};
}

RouterResult prepare_router(const Input& x, std::int64_t k, const RouterOptions& router, py::handle bias,
                            const Options& options) {
  if (x.array.ndim() != 2) {
    throw py::value_error("router_logits must have 2 dimensions (tokens, experts), got shape " +
                          shape_text(shape_of(x.array)));
  }
  Prepared p = prepared_call(Operation::kTopkSoftmax, x, options, 1);
  p.call.k = k;
  p.call.router = router;
  // k and the groups are checked (with every option) before the results, whose shape k is.
  if (fastsoftmax::run(empty_call(p)) != Status::kOk) return {py::array(), py::array(), p};
  if (!bias.is_none()) {
    const py::array values = numpy().attr("ascontiguousarray")(bias, py::arg("dtype") = "float32");
    if (values.ndim() != 1 || values.shape(0) != x.array.shape(1)) {
      throw py::value_error("correction_bias has shape " + shape_text(shape_of(values)) + "; expected (" +
                            std::to_string(x.array.shape(1)) + ",), one per expert");
    }
    p.inputs[0] = numpy().attr("broadcast_to")(values, x.array.attr("shape"));
  }
  const std::vector<py::ssize_t> shape = {x.array.shape(0), static_cast<py::ssize_t>(k)};
  const py::array weights = py::array_t<float>(shape), ids = py::array_t<std::int32_t>(shape);
  p.outputs = {weights, ids};
  return {weights, ids, p};
}

namespace {

// One sampling parameter of every row into params (one per row, or a single shared one): None
// leaves the default; a Python or NumPy number, or an array broadcast to `rows`.
template <class Field>
void sampling_field(py::handle value, const char* name, Field SamplingParams::*field, const py::tuple& rows,
                    std::vector<SamplingParams>& params) {
  constexpr bool kInteger = std::is_integral_v<Field>;
  if (value.is_none()) return;
  // Python numbers (the common call), without NumPy.
  PyObject* object = value.ptr();
  const bool python_int = PyLong_CheckExact(object), python_float = PyFloat_CheckExact(object);
  if (python_int || (python_float && !kInteger)) {
    int overflow = 0;
    const long long integer = python_int ? PyLong_AsLongLongAndOverflow(object, &overflow) : 0;
    if (overflow != 0) throw py::value_error(std::string(name) + " is out of range: " + std::string(py::str(value)));
    const Field v = python_int ? static_cast<Field>(integer) : static_cast<Field>(PyFloat_AsDouble(object));
    for (SamplingParams& p : params) p.*field = v;
    return;
  }
  const py::array array = numpy().attr("asarray")(value);
  const char kind = array.dtype().kind();
  if (kInteger ? (kind != 'i' && kind != 'u') : (kind != 'f' && kind != 'i' && kind != 'u')) {
    throw py::type_error(std::string(name) + (kInteger ? " must be an integer or an array of integers"
                                                       : " must be a real number or an array of them") +
                         ", got dtype " + std::string(py::str(array.dtype())));
  }
  using Wide = std::conditional_t<kInteger, std::int64_t, double>;
  if (kind == 'u' && array.size() > 0 &&
      array.attr("max")().cast<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    throw py::value_error(std::string(name) + " is out of range: " + std::string(py::str(array.attr("max")())));
  }
  if (array.ndim() == 0) {
    const Wide v = array.attr("item")().cast<Wide>();
    for (SamplingParams& p : params) p.*field = static_cast<Field>(v);
    return;
  }
  py::array broadcast;
  try {
    broadcast = numpy().attr("broadcast_to")(array, rows);
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_ValueError)) throw;
    throw py::value_error(std::string(name) + " has shape " + shape_text(shape_of(array)) +
                          ", which does not broadcast to the rows, " + shape_text(rows.cast<std::vector<py::ssize_t>>()));
  }
  const auto values = py::array_t<Wide, py::array::c_style | py::array::forcecast>::ensure(broadcast.attr("ravel")());
  if (!values) throw py::error_already_set();
  if (params.size() == 1 && values.size() > 1) params.resize(static_cast<std::size_t>(values.size()), params[0]);
  for (py::ssize_t i = 0; i < values.size(); ++i) params[static_cast<std::size_t>(i)].*field = static_cast<Field>(values.data()[i]);
}

}  // namespace

void prepare_sample(const Input& x, py::handle temperature, py::handle top_k, py::handle top_p, py::handle min_p,
                    std::uint64_t seed, py::handle where, const Options& options, SampleCall& out) {
  const int ndim = static_cast<int>(x.array.ndim());
  if (ndim != 1 && ndim != 2) {
    throw py::value_error("logits must have 1 or 2 dimensions ((vocab,) or (batch, vocab)), got shape " +
                          shape_text(shape_of(x.array)));
  }
  const std::vector<py::ssize_t> shape = shape_of(x.array);
  const std::vector<py::ssize_t> rows_shape(shape.begin(), shape.end() - 1);
  const py::tuple rows = py::cast(rows_shape);
  out.params.assign(1, SamplingParams{});
  sampling_field(temperature, "temperature", &SamplingParams::temperature, rows, out.params);
  sampling_field(top_k, "top_k", &SamplingParams::top_k, rows, out.params);
  sampling_field(top_p, "top_p", &SamplingParams::top_p, rows, out.params);
  sampling_field(min_p, "min_p", &SamplingParams::min_p, rows, out.params);

  out.x = x.array;
  out.ids = py::array_t<std::int64_t>(rows_shape);
  out.probabilities = py::array_t<float>(rows_shape);
  const std::vector<std::ptrdiff_t> strides = element_strides(x.array);
  Call& call = out.call;
  call.operation = Operation::kSample;
  call.dtype = x.dtype;
  call.options = options;
  call.seed = seed;
  call.rows = ndim == 2 ? static_cast<std::size_t>(shape[0]) : 1;
  call.n = static_cast<std::size_t>(shape[ndim - 1]);
  call.inputs[0] = {x.array.data(), ndim == 2 ? strides[0] : 0, strides[ndim - 1]};
  call.inputs[1] = {out.params.data(), out.params.size() == 1 ? 0 : 1, 1};
  call.outputs[0] = {out.ids.mutable_data(), 1, 1};
  call.outputs[1] = {out.probabilities.mutable_data(), 1, 1};
  if (!where.is_none()) {
    Prepared masked = prepared_call(Operation::kSample, x, options, ndim - 1);
    attach_mask(masked, where);
    out.mask = masked.mask;
    const std::vector<std::ptrdiff_t> mask_strides = element_strides(out.mask);
    call.mask = {out.mask.data(), ndim == 2 ? mask_strides[0] : 0, mask_strides[ndim - 1]};
  }
}

void attach_mask(Prepared& p, py::handle where) {
  if (where.is_none()) return;
  const py::array mask = numpy().attr("asarray")(where);
  if (mask.dtype().kind() != 'b') {
    throw py::type_error("where must be a boolean array (True: the entry takes part), got dtype " +
                         std::string(py::str(mask.dtype())));
  }
  try {
    p.mask = numpy().attr("broadcast_to")(mask, p.x.attr("shape"));
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_ValueError)) throw;
    throw py::value_error("where has shape " + shape_text(shape_of(mask)) + ", which does not broadcast to x's shape " +
                          shape_text(shape_of(p.x)));
  }
}

LogSumExpResult prepare_logsumexp(Input x, py::handle axis, py::handle b, py::handle where, const Options& options) {
  const int ndim = static_cast<int>(x.array.ndim());
  const int along = axis_argument(axis, std::max(ndim, 1));
  py::object weights = py::none();
  if (!b.is_none()) {
    const Input given = input_array(b, "logsumexp");
    // The result's dtype: NumPy's promotion of a's and b's (bfloat16 with float32: float32).
    const int rank = std::max(float_rank(x.dtype), float_rank(given.dtype));
    DataType dtype = rank == 2 ? DataType::kFloat64 : rank == 1 ? DataType::kFloat32 : x.dtype;
    if (rank == 0 && given.dtype != x.dtype) dtype = DataType::kFloat32;  // float16 with bfloat16
    if (x.dtype != dtype) x = converted(x, dtype, x.from_dlpack);
    const Input b_values = given.dtype == dtype ? given : converted(given, dtype, given.from_dlpack);
    try {
      weights = numpy().attr("broadcast_to")(bits_of(b_values), x.array.attr("shape"));
    } catch (py::error_already_set& e) {
      if (!e.matches(PyExc_ValueError)) throw;
      throw py::value_error("b has shape " + shape_text(shape_of(given.array)) + ", which does not broadcast to a's "
                            "shape " + shape_text(shape_of(x.array)));
    }
    if (ndim == 0) weights = weights.attr("reshape")(1);
  }
  Prepared p = prepared_call(Operation::kLogSumExp, x, options, along);
  p.inputs[0] = weights;
  attach_mask(p, where);
  const py::dtype storage = x.array.dtype();
  const std::vector<py::ssize_t> shape = without_axis(p.x, p.axis);
  py::array lse(storage, shape), sign(storage, shape);
  p.outputs = {per_row_view(bits_of({lse, x.dtype}), p.axis, p.x), per_row_view(bits_of({sign, x.dtype}), p.axis, p.x)};
  if (p.x.shape(p.axis) == 0) {  // empty rows: log(0) = -inf, sign 0 (SciPy's)
    lse.attr("fill")(-INFINITY);
    sign.attr("fill")(0);
  }
  return {lse, sign, p};
}

StatesResult prepare_states(const Input& x, py::handle axis, py::handle where, const Options& options) {
  const int ndim = static_cast<int>(x.array.ndim());
  Prepared p = prepared_call(Operation::kSoftmaxState, x, options, axis_argument(axis, std::max(ndim, 1)));
  attach_mask(p, where);
  std::vector<py::ssize_t> shape = without_axis(p.x, p.axis);
  shape.push_back(kStateFields);
  py::array_t<double> states(shape);
  p.outputs = {per_row_view(state_elements(states), p.axis, p.x)};
  if (p.x.shape(p.axis) == 0) {  // empty rows: the empty state
    const NormalizerState empty = {-INFINITY, 0.0, 0.0, 0.0, options.temperature};
    states.attr("__setitem__")(py::ellipsis(), py::make_tuple(empty.max, empty.sum, empty.sum_low, empty.count,
                                                              empty.temperature));
  }
  return {states, p};
}

FromStateResult prepare_from_state(Operation operation, const Input& x, py::handle states, py::handle axis,
                                   py::handle where, py::handle out, const Options& options) {
  const int ndim = static_cast<int>(x.array.ndim());
  if (ndim == 0) throw py::value_error(std::string(operation_name(operation)) + " needs x of at least one dimension");
  Prepared p = prepared_call(operation, x, options, axis_argument(axis, ndim));
  const py::array given = numpy().attr("asarray")(states);
  if (!same_dtype(given.dtype(), py::dtype::of<double>())) {
    throw py::type_error("state must be a float64 array (softmax_state's), got dtype " +
                         std::string(py::str(given.dtype())));
  }
  std::vector<py::ssize_t> expected = without_axis(p.x, p.axis);
  expected.push_back(kStateFields);
  if (shape_of(given) != expected) {
    throw py::value_error("state has shape " + shape_text(shape_of(given)) + "; expected " + shape_text(expected) +
                          ": x's shape without axis, then the " + std::to_string(kStateFields) + " fields of a state");
  }
  const py::array contiguous = numpy().attr("ascontiguousarray")(given);
  p.inputs[0] = per_row_view(state_elements(contiguous), p.axis, p.x);
  attach_mask(p, where);
  py::array y;
  if (out.is_none()) {
    y = py::array(x.array.dtype(), shape_of(x.array));
  } else {
    const Input o = out_array(out, shape_of(x.array));
    if (o.dtype != x.dtype) {
      throw py::type_error(std::string("out has dtype ") + dtype_name(o.dtype) + "; expected " + dtype_name(x.dtype) +
                           ", x's");
    }
    if (may_share_memory(p.x, o.array) && !same_view(p.x, o.array)) {
      throw py::value_error("out overlaps x without being x (in place)");
    }
    y = o.array;
  }
  p.outputs = {y};
  return {y, p};
}

void run(const Prepared& p) {
  if (nothing_to_compute(p)) {
    const Call call = empty_call(p);
    if (fastsoftmax::run(call) != Status::kOk) raise_refused(call);
    return;
  }
  Call refused;
  bool ok = true;
  {
    py::gil_scoped_release release;
    for_each_call(p, [&](const Call& call) {
      ok = fastsoftmax::run(call) == Status::kOk;
      if (!ok) refused = call;
      return ok;
    });
  }
  if (!ok) raise_refused(refused);
}

Explanation explain(const Prepared& p) {
  Explanation explanation = fastsoftmax::explain(empty_call(p));
  if (nothing_to_compute(p) || explanation.status != Status::kOk) return explanation;
  for_each_call(p, [&](const Call& call) {
    explanation = fastsoftmax::explain(call);
    return false;
  });
  return explanation;
}

}  // namespace fastsoftmax::python
