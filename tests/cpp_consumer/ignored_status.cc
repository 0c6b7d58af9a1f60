// Every function of the installed API that returns a Status, its result ignored: each line that
// ends in an IGNORED comment must draw a warning (Status is [[nodiscard]]).
// tests/test_cpp_consumer.py compiles this with -fsyntax-only and matches the warnings to the lines.
#include <fastsoftmax/fastsoftmax.h>

#include <cstdint>

namespace fsm = fastsoftmax;

void ignore_every_status() {
  float x[4] = {1, 2, 3, 4}, y[4];
  double xd[4] = {1, 2, 3, 4}, yd[4];
  fsm::Float16 xh[4] = {}, yh[4];
  fsm::BFloat16 xb[4] = {}, yb[4];
  std::int64_t indices[2];
  const fsm::RowLayout row = fsm::RowLayout::contiguous(1, 4);
  fsm::Call call;
  fsm::Isa isa;
  fsm::softmax(x, y, row);                               // IGNORED
  fsm::softmax(xd, yd, row);                             // IGNORED
  fsm::softmax(xh, yh, row);                             // IGNORED
  fsm::softmax(xb, yb, row);                             // IGNORED
  fsm::log_softmax(x, y, row);                           // IGNORED
  fsm::log_softmax(xd, yd, row);                         // IGNORED
  fsm::log_softmax(xh, yh, row);                         // IGNORED
  fsm::log_softmax(xb, yb, row);                         // IGNORED
  fsm::softmax(x, y, 4);                                 // IGNORED
  fsm::softmax(xb, yb, 4);                               // IGNORED
  fsm::log_softmax(xd, yd, 4);                           // IGNORED
  fsm::log_softmax(xh, yh, 4);                           // IGNORED
  fsm::softmax_topk(x, y, indices, row, 2);              // IGNORED
  fsm::softmax_topk(xd, yd, indices, row, 2);            // IGNORED
  fsm::softmax_topk(xh, yh, indices, row, 2);            // IGNORED
  fsm::softmax_topk(xb, yb, indices, row, 2);            // IGNORED
  fsm::softmax_topk(x, y, indices, 4, 2);                // IGNORED
  fsm::run(call);                                        // IGNORED
  fsm::auto_isa(&isa);                                   // IGNORED
}
