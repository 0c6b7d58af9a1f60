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

// An input the kernels can read: x itself where it is an aligned array of float32, float64,
// float16 or bfloat16 (ml_dtypes) in native byte order, else a converted copy (anything
// numpy.asarray takes; integers and bools become float64). TypeError for other dtypes.
struct Input {
  py::array array;
  DataType dtype;
};
Input input_array(py::handle x, const char* function);

// An N-d operation along one axis, ready to run: the library call's fixed part (operation, dtype,
// options, k, sorted) and the arrays it reads and writes.
struct Prepared {
  Call call;
  py::array x;                     // at least one dimension
  std::vector<py::array> outputs;  // where the kernels write, in the operation's operand order
  int axis;
};

// softmax or log_softmax of x along `axis`: the result (out, or a new C-contiguous array of x's
// shape), and where the kernels write (the result itself, or a temporary when out overlaps x
// without being x, or is misaligned). TypeError / ValueError for a bad out, before any write.
struct RowwiseResult {
  py::array result;
  Prepared prepared;
  bool through_temporary;
};
RowwiseResult prepare_rowwise(Operation operation, const Input& x, py::handle axis, py::handle out,
                              const Options& options);

// softmax_topk: (values, indices) with `axis` of length k, and the prepared call writing them
// (none for a call the library refuses: run() then raises and explain() says why).
struct TopkResult {
  py::array values;
  py::array indices;
  Prepared prepared;
};
TopkResult prepare_topk(const Input& x, std::int64_t k, py::handle axis, bool sorted, const Options& options);

// Runs every library call of the operation (without the GIL); ValueError with the library's
// message if it refuses the call, before anything is written.
void run(const Prepared& prepared);
// What the first library call of the operation would run, and why.
Explanation explain(const Prepared& prepared);

}  // namespace fastsoftmax::python
