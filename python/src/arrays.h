// fastsoftmax._core: NumPy arrays to the library's Calls and back. Which arrays the kernels read
// without a copy, the result and out= rules, and an N-d operation along one axis as row-wise
// Calls; the library validates, plans and runs each Call.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

#include "fastsoftmax/fastsoftmax.h"

namespace fastsoftmax::python {

namespace py = pybind11;

// An array with the library's element type of its values. bfloat16 is held as ml_dtypes.bfloat16
// (NumPy callers' arrays) or as uint16 bits (arrays of other frameworks, read through DLPack,
// and results made for them: the caller never sees these).
struct Input {
  py::array array;
  DataType dtype;
  bool from_dlpack = false;  // the memory of another framework's array
};
// An input the kernels can read: x itself where it is an aligned array of float32, float64,
// float16 or bfloat16 (ml_dtypes) in native byte order, or a DLPack capsule of a CPU array
// (another framework's, consumed without a copy); else a converted copy (anything numpy.asarray
// takes; integers and bools become float64). TypeError for other dtypes.
Input input_array(py::handle x, const char* function);

// How out= may differ from the result's dtype, by NumPy's names: "no" and "equiv" (the same
// dtype), "safe" (to a wider float: float16 or bfloat16 to float32 or float64, float32 to
// float64), "same_kind" and "unsafe" (any float dtype, rounding the result).
enum class Casting { kNo, kEquiv, kSafe, kSameKind, kUnsafe };
Casting casting_argument(py::handle casting);
// dtype= as the library's element type: None (the input's own), or one of the names "float16",
// "bfloat16", "float32", "float64" (the package turns dtype objects into these).
bool dtype_argument(py::handle dtype, DataType* element);

// An N-d operation along one axis, ready to run: the library call's fixed part (operation, dtype,
// options, k, sorted) and the arrays it reads and writes. Every array but x has x's shape: operands
// with one element per row (logsumexp's results, states) are views with the axis put back at
// stride 0 (per_row_view).
struct Prepared {
  Call call;
  py::array x;                     // at least one dimension
  std::vector<py::object> inputs;  // the operation's inputs after x (b, states) as arrays; None: absent
  py::object mask = py::none();    // where=, an array broadcast to x's shape; None: no mask
  std::vector<py::array> outputs;  // where the kernels write, in the operation's operand order
  int axis;
};

// where=: a boolean array broadcastable to x's shape, attached to the prepared call (TypeError if
// not boolean, ValueError if not broadcastable); None attaches nothing.
void attach_mask(Prepared& p, py::handle where);

// logsumexp of x along `axis` (b: None or an array broadcastable to x, converted to the result's
// dtype): (lse, sign), arrays of x's shape without `axis`, and the call that writes them.
struct LogSumExpResult {
  py::array lse;
  py::array sign;
  Prepared prepared;
};
LogSumExpResult prepare_logsumexp(Input x, py::handle axis, py::handle b, py::handle where, const Options& options);

// The doubles of a NormalizerState: the last axis of a state array (fastsoftmax.STATE_FIELDS).
constexpr py::ssize_t kStateFields = sizeof(NormalizerState) / sizeof(double);

// softmax_state: float64 states of shape (x's shape without `axis`) + (kStateFields,), and the call.
struct StatesResult {
  py::array states;
  Prepared prepared;
};
StatesResult prepare_states(const Input& x, py::handle axis, py::handle where, const Options& options);

// softmax_from_state / log_softmax_from_state: y of x's shape (or out=, of x's shape and dtype),
// from states of shape (x's shape without `axis`) + (kStateFields,), float64.
struct FromStateResult {
  py::array y;
  Prepared prepared;
};
FromStateResult prepare_from_state(Operation operation, const Input& x, py::handle states, py::handle axis,
                                   py::handle where, py::handle out, const Options& options);

// softmax or log_softmax of x along `axis`: the result (out, or a new C-contiguous array of x's
// shape), and where the kernels write (the result itself, or a temporary when out overlaps x
// without being x, or is misaligned). TypeError / ValueError for a bad out, before any write.
struct RowwiseResult {
  py::array result;
  DataType result_dtype;
  Prepared prepared;
  bool through_temporary;
};
// dtype= (has_dtype): x is converted to it first, and the result has it. out= may be any float
// dtype that `casting` allows from the result's; a float16 or bfloat16 x with a wider out= and no
// dtype= is computed in out's dtype (for its accuracy, and with no temporary).
RowwiseResult prepare_rowwise(Operation operation, Input x, py::handle axis, py::handle out, const Options& options,
                              bool has_dtype, DataType dtype, Casting casting);
// After run(): the temporary's values into the result, converted to its dtype.
void finish_rowwise(const RowwiseResult& call);

// softmax_topk: (values, indices) with `axis` of length k, and the prepared call writing them
// (none for a call the library refuses: run() then raises and explain() says why).
struct TopkResult {
  py::array values;
  py::array indices;
  Prepared prepared;
};
TopkResult prepare_topk(const Input& x, std::int64_t k, py::handle axis, bool sorted, const Options& options);

// topk_softmax: (weights float32, ids int32) of shape (tokens, k) for router logits x of shape
// (tokens, experts), bias None or (experts,) floats, and the call (none when the library refuses
// it: run() then raises).
struct RouterResult {
  py::array weights;
  py::array ids;
  Prepared prepared;
};
RouterResult prepare_router(const Input& x, std::int64_t k, const RouterOptions& router, py::handle bias,
                            const Options& options);

// sample: the library call over logits x of one or two dimensions (ValueError otherwise) with
// each row's parameters (None: the default; a real number, or an array broadcastable to the rows,
// x.shape[:-1]; top_k integers, else TypeError), where= (as attach_mask) and the results: int64
// ids and float32 probabilities of shape x.shape[:-1]. The call points into `params` and the
// arrays held here: keep the SampleCall in place until it has run.
struct SampleCall {
  Call call;
  std::vector<SamplingParams> params;  // one per row, or one for every row (row stride 0)
  py::array x, mask, ids, probabilities;
};
void prepare_sample(const Input& x, py::handle temperature, py::handle top_k, py::handle top_p, py::handle min_p,
                    std::uint64_t seed, py::handle where, const Options& options, SampleCall& out);

// Runs every library call of the operation (without the GIL); ValueError with the library's
// message if it refuses the call, before anything is written.
void run(const Prepared& prepared);
// What the first library call of the operation would run, and why.
Explanation explain(const Prepared& prepared);

}  // namespace fastsoftmax::python
