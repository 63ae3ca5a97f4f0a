// The first layer of a sparse-input autoencoder over the observed entries only, as
// XLA FFI CPU kernels (autorec_jax/sparse_input.py builds and registers them). A
// batch's entries are (row[e], col[e]) for e < count, rows ascending; x [B, I] is
// dense but zero outside them; W [I, H]:
//   SparseInputForward     out[B, H] = x @ W         (rows of W of listed columns)
//   SparseInputWeightGrad  out[I, H] = x^T @ g       (only listed rows nonzero)
//   SparseInputInputGrad   out[B, I] = g @ W^T       (at the entries, 0 elsewhere)
// Work is O(count * H) instead of O(B * I * H). Above kParallelEntries entries, up to
// four threads split row-indexed outputs at row boundaries and column-indexed
// outputs by column ranges, so no two threads write the same output row.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int32_t kParallelEntries = 8192;  // below this one thread is faster

int NumThreads(int32_t count) {
  if (count < kParallelEntries) return 1;
  const unsigned hw = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp<unsigned>(hw, 1u, 4u));
}

template <typename Fn>
void RunParallel(int threads, Fn fn) {
  if (threads == 1) {
    fn(0, 1);
    return;
  }
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(fn, t, threads);
  fn(0, threads);
  for (auto& th : pool) th.join();
}

struct Entries {
  const int32_t* row;
  const int32_t* col;
  int32_t count;
};

ffi::ErrorOr<Entries> GetEntries(ffi::Buffer<ffi::S32>& row, ffi::Buffer<ffi::S32>& col,
                                 ffi::Buffer<ffi::S32>& count_buf) {
  const int32_t count = count_buf.typed_data()[0];
  if (count < 0 || count > row.element_count() || row.element_count() != col.element_count()) {
    return ffi::Unexpected(ffi::Error(ffi::ErrorCode::kInvalidArgument,
                                      "sparse_input: entry count outside [0, capacity]"));
  }
  return Entries{row.typed_data(), col.typed_data(), count};
}

// out[row[e]] += value(e) * src[col[e]]; out is [B, H] zeroed here.
template <typename Value>
void AccumulateByRow(const Entries& en, Value value, const float* src, int64_t H,
                     int64_t B, float* out) {
  std::memset(out, 0, sizeof(float) * B * H);
  RunParallel(NumThreads(en.count), [&](int t, int threads) {
    int32_t lo = static_cast<int32_t>(int64_t{en.count} * t / threads);
    int32_t hi = static_cast<int32_t>(int64_t{en.count} * (t + 1) / threads);
    while (lo > 0 && lo < en.count && en.row[lo] == en.row[lo - 1]) ++lo;
    while (hi > 0 && hi < en.count && en.row[hi] == en.row[hi - 1]) ++hi;
    for (int32_t e = lo; e < hi; ++e) {
      const float a = value(e);
      float* dst = out + int64_t{en.row[e]} * H;
      const float* s = src + int64_t{en.col[e]} * H;
      for (int64_t k = 0; k < H; ++k) dst[k] += a * s[k];
    }
  });
}

// out[col[e]] += value(e) * src[row[e]]; out is [I, H] zeroed here.
template <typename Value>
void AccumulateByCol(const Entries& en, Value value, const float* src, int64_t H,
                     int64_t I, float* out) {
  std::memset(out, 0, sizeof(float) * I * H);
  RunParallel(NumThreads(en.count), [&](int t, int threads) {
    const int64_t c_lo = I * t / threads, c_hi = I * (t + 1) / threads;
    for (int32_t e = 0; e < en.count; ++e) {
      if (en.col[e] < c_lo || en.col[e] >= c_hi) continue;
      const float a = value(e);
      float* dst = out + int64_t{en.col[e]} * H;
      const float* s = src + int64_t{en.row[e]} * H;
      for (int64_t k = 0; k < H; ++k) dst[k] += a * s[k];
    }
  });
}

// dot(a[row[e]], b[col[e]]) for every entry, handed to store(e, value).
template <typename Store>
void Dots(const Entries& en, const float* a, const float* b, int64_t H, Store store) {
  RunParallel(NumThreads(en.count), [&](int t, int threads) {
    const int32_t lo = static_cast<int32_t>(int64_t{en.count} * t / threads);
    const int32_t hi = static_cast<int32_t>(int64_t{en.count} * (t + 1) / threads);
    for (int32_t e = lo; e < hi; ++e) {
      const float* x = a + int64_t{en.row[e]} * H;
      const float* y = b + int64_t{en.col[e]} * H;
      float s = 0.0f;
#pragma omp simd reduction(+ : s)
      for (int64_t k = 0; k < H; ++k) s += x[k] * y[k];
      store(e, s);
    }
  });
}

using F32 = ffi::Buffer<ffi::F32>;
using S32 = ffi::Buffer<ffi::S32>;
using Out = ffi::ResultBuffer<ffi::F32>;

// The input value of entry k: x[row[k], col[k]] of a dense [B, I] batch.
struct InputValue {
  const float* x;
  int64_t width;
  const Entries* en;
  float operator()(int32_t k) const { return x[int64_t{en->row[k]} * width + en->col[k]]; }
};

ffi::Error SparseInputForward(F32 x, F32 w, S32 row, S32 col, S32 count, Out out) {
  auto en = GetEntries(row, col, count);
  if (en.has_error()) return en.error();
  AccumulateByRow(en.value(), InputValue{x.typed_data(), x.dimensions()[1], &en.value()},
                  w.typed_data(), w.dimensions()[1], x.dimensions()[0], out->typed_data());
  return ffi::Error::Success();
}

ffi::Error SparseInputWeightGrad(F32 x, F32 g, S32 row, S32 col, S32 count, Out out) {
  auto en = GetEntries(row, col, count);
  if (en.has_error()) return en.error();
  AccumulateByCol(en.value(), InputValue{x.typed_data(), x.dimensions()[1], &en.value()},
                  g.typed_data(), g.dimensions()[1], x.dimensions()[1], out->typed_data());
  return ffi::Error::Success();
}

ffi::Error SparseInputInputGrad(F32 g, F32 w, S32 row, S32 col, S32 count, Out out) {
  auto en = GetEntries(row, col, count);
  if (en.has_error()) return en.error();
  const int64_t B = out->dimensions()[0], I = out->dimensions()[1];
  float* O = out->typed_data();
  std::memset(O, 0, sizeof(float) * B * I);
  const Entries& e = en.value();
  Dots(e, g.typed_data(), w.typed_data(), g.dimensions()[1],
       [&](int32_t k, float s) { O[int64_t{e.row[k]} * I + e.col[k]] = s; });
  return ffi::Error::Success();
}

}  // namespace

#define AUTOREC_BIND                                                                 \
  ffi::Ffi::Bind().Arg<F32>().Arg<F32>().Arg<S32>().Arg<S32>().Arg<S32>().Ret<F32>()

XLA_FFI_DEFINE_HANDLER_SYMBOL(AutorecSparseInputForward, SparseInputForward, AUTOREC_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(AutorecSparseInputWeightGrad, SparseInputWeightGrad,
                              AUTOREC_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(AutorecSparseInputInputGrad, SparseInputInputGrad,
                              AUTOREC_BIND);
