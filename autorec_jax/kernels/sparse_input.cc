// The first and last layers of a sparse-input autoencoder over the observed entries
// only, as XLA FFI CPU kernels (autorec_jax/sparse_input.py builds and registers
// them). A batch's entries are (row[e], col[e]) with values val[e] for e < count: the
// nonzeros of a [B, I] input x that is never built; the first layer's W is [I, H]:
//   SparseInputForward     out[B, H] = x @ W         (rows of W of listed columns)
//   SparseInputWeightGrad  out[I, H] = x^T @ g       (only listed rows nonzero)
//   SparseInputInputGrad   out[E]    = (g @ W^T)[row[e], col[e]]  (0 past count)
// The output layer, h [B, H] -> [B, I] through V stored items-major, [I, H] (a row
// per item, as the model stores it), and bias c [I], at the entries only:
//   SparseOutputForward    out[e] = h[row[e]] . V[col[e]] + c[col[e]]
//   SparseOutputBackward   dh = G @ V, dV = G^T @ h, dc = column sums of G, where
//                          G [B, I] holds g[e] at the entries and 0 elsewhere
// Work is O(count * H) instead of O(B * I * H). Every kernel walks the entries by
// tiles of kTile consecutive items (a counting sort per call), so each item's row of
// W or V is read, and its gradient row written, once per call while it sits in L2;
// the [B, H] operands stay in L2 throughout. Above kParallelEntries entries, the
// tiles are split into up to four parts run on XLA's own intra-op thread pool (no
// threads of ours competing with it); [B, H] outputs are summed from per-part copies.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int32_t kParallelEntries = 8192;  // below this one part is faster
constexpr int64_t kTile = 64;  // items per tile: two [64, 512] float blocks fit L2

int NumParts(int32_t count) {
  if (count < kParallelEntries) return 1;
  const unsigned hw = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp<unsigned>(hw, 1u, 4u));
}

// Runs fn(0) ... fn(n - 1) on the caller and XLA's intra-op thread pool. The caller
// claims parts too, so it finishes alone when the pool is busy elsewhere, and waits
// only for parts already running.
template <typename Fn>
void RunParallel(ffi::ThreadPool& pool, int n, Fn fn) {
  if (n == 1) {
    fn(0);
    return;
  }
  struct Shared {
    std::atomic<int> next{0}, done{0};
    std::mutex mu;
    std::condition_variable cv;
  };
  auto shared = std::make_shared<Shared>();
  const auto drain = [shared, n, f = &fn] {
    for (int t; (t = shared->next.fetch_add(1)) < n;) {
      (*f)(t);
      if (shared->done.fetch_add(1) + 1 == n) {
        std::lock_guard<std::mutex> lock(shared->mu);
        shared->cv.notify_all();
      }
    }
  };
  for (int t = 1; t < n; ++t) {
    auto task = drain;
    pool.Schedule(std::move(task));
  }
  drain();
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->cv.wait(lock, [&] { return shared->done.load() == n; });
}

struct Entries {
  const int32_t* row;
  const int32_t* col;
  int32_t count;
};

// The entry lists, checked: count within the capacity and every listed (row, col)
// inside the [rows, cols] matrix it indexes, so that no kernel reads or writes wild.
// `values`, where given, is the length of the entries' value list.
ffi::ErrorOr<Entries> GetEntries(ffi::Buffer<ffi::S32>& row, ffi::Buffer<ffi::S32>& col,
                                 ffi::Buffer<ffi::S32>& count_buf, int64_t rows,
                                 int64_t cols, int64_t values = -1) {
  const int32_t count = count_buf.typed_data()[0];
  if (count < 0 || count > row.element_count() || row.element_count() != col.element_count() ||
      (values >= 0 && values != row.element_count())) {
    return ffi::Unexpected(
        ffi::Error(ffi::ErrorCode::kInvalidArgument,
                   "sparse_input: entry count outside [0, capacity] or entry lists of "
                   "unequal lengths"));
  }
  const int32_t* r = row.typed_data();
  const int32_t* c = col.typed_data();
  for (int32_t e = 0; e < count; ++e) {
    if (r[e] < 0 || r[e] >= rows || c[e] < 0 || c[e] >= cols) {
      return ffi::Unexpected(ffi::Error(ffi::ErrorCode::kInvalidArgument,
                                        "sparse_input: an entry outside the matrix"));
    }
  }
  return Entries{r, c, count};
}

inline float Dot(const float* x, const float* y, int64_t H) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < H; ++k) s += x[k] * y[k];
  return s;
}

inline void Axpy(float a, const float* x, float* y, int64_t H) {
#pragma omp simd
  for (int64_t k = 0; k < H; ++k) y[k] += a * x[k];
}

// The entries grouped by tiles of kTile consecutive items, each tile's entries
// order[start[t]] ... order[start[t + 1] - 1], and the tiles split into parts of
// about the same number of entries, one per thread.
class ColumnTiles {
 public:
  ColumnTiles(const Entries& en, int64_t num_items)
      : en_(en), items_(num_items), num_((num_items + kTile - 1) / kTile),
        parts_(NumParts(en.count)), start_(num_ + 1, 0), order_(en.count) {
    for (int32_t e = 0; e < en.count; ++e) ++start_[en.col[e] / kTile + 1];
    for (int64_t t = 0; t < num_; ++t) start_[t + 1] += start_[t];
    std::vector<int32_t> next(start_.begin(), start_.end() - 1);
    for (int32_t e = 0; e < en.count; ++e) order_[next[en.col[e] / kTile]++] = e;
  }

  int parts() const { return parts_; }

  // Calls fn(lo, n, first, last) for part t's tiles: items [lo, lo + n), entries
  // order positions [first, last). Every tile, empty or not, is in one part.
  template <typename Fn>
  void ForEachTile(int t, Fn fn) const {
    for (int64_t tile = Bound(t); tile < Bound(t + 1); ++tile) {
      const int64_t lo = tile * kTile;
      fn(lo, std::min(kTile, items_ - lo), start_[tile], start_[tile + 1]);
    }
  }

  // Calls fn(k, row[k], col[k]) for part t's entries k, tile by tile; with
  // `each_tile`, each_tile(lo, n) first for every tile of the part, empty or not.
  template <typename Fn, typename TileFn>
  void ForEachEntry(int t, Fn fn, TileFn each_tile) const {
    ForEachTile(t, [&](int64_t lo, int64_t n, int32_t first, int32_t last) {
      each_tile(lo, n);
      for (int32_t p = first; p < last; ++p) {
        const int32_t k = order_[p];
        fn(k, int64_t{en_.row[k]}, int64_t{en_.col[k]});
      }
    });
  }
  template <typename Fn>
  void ForEachEntry(int t, Fn fn) const {
    ForEachEntry(t, fn, [](int64_t, int64_t) {});
  }

 private:
  int64_t Bound(int t) const {
    if (t == 0) return 0;
    if (t >= parts_) return num_;
    const int64_t target = int64_t{en_.count} * t / parts_;
    return std::lower_bound(start_.begin(), start_.end(), target) - start_.begin();
  }

  Entries en_;
  int64_t items_, num_;
  int parts_;
  std::vector<int32_t> start_, order_;
};

// Runs body(t, out_t) for every part t with out_t a zeroed [size] array of its own
// (`out` itself for part 0), then sums them into `out`.
template <typename Body>
void WithPartialSums(ffi::ThreadPool& pool, const ColumnTiles& tiles, float* out,
                     int64_t size, Body body) {
  std::memset(out, 0, sizeof(float) * size);
  std::vector<std::vector<float>> parts(tiles.parts() - 1);
  RunParallel(pool, tiles.parts(), [&](int t) {
    if (t == 0) return body(0, out);
    parts[t - 1].assign(size, 0.0f);
    body(t, parts[t - 1].data());
  });
  for (const auto& part : parts) Axpy(1.0f, part.data(), out, size);
}

using F32 = ffi::Buffer<ffi::F32>;
using S32 = ffi::Buffer<ffi::S32>;
using Out = ffi::ResultBuffer<ffi::F32>;

// The output kernel must be [I, H]: a row per item of the bias, as wide as h.
ffi::Error CheckItemsMajor(const F32& v, int64_t I, int64_t H) {
  const auto dims = v.dimensions();
  if (dims.size() != 2 || dims[0] != I || dims[1] != H) {
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "sparse_input: the output kernel must be [items, hidden] (items-major)");
  }
  return ffi::Error::Success();
}

ffi::Error SparseInputForward(ffi::ThreadPool pool, F32 val, F32 w, S32 row, S32 col,
                              S32 count, Out out) {
  const int64_t B = out->dimensions()[0], I = w.dimensions()[0], H = w.dimensions()[1];
  auto en = GetEntries(row, col, count, B, I, val.element_count());
  if (en.has_error()) return en.error();
  const Entries& e = en.value();
  const ColumnTiles tiles(e, I);
  WithPartialSums(pool, tiles, out->typed_data(), B * H, [&](int t, float* o) {
    tiles.ForEachEntry(t, [&](int32_t k, int64_t r, int64_t c) {
      Axpy(val.typed_data()[k], w.typed_data() + c * H, o + r * H, H);
    });
  });
  return ffi::Error::Success();
}

ffi::Error SparseInputWeightGrad(ffi::ThreadPool pool, F32 val, F32 g, S32 row, S32 col,
                                 S32 count, Out out) {
  const int64_t B = g.dimensions()[0], I = out->dimensions()[0], H = g.dimensions()[1];
  auto en = GetEntries(row, col, count, B, I, val.element_count());
  if (en.has_error()) return en.error();
  const Entries& e = en.value();
  const ColumnTiles tiles(e, I);
  float* dw = out->typed_data();
  RunParallel(pool, tiles.parts(), [&](int t) {
    tiles.ForEachEntry(
        t,
        [&](int32_t k, int64_t r, int64_t c) {
          Axpy(val.typed_data()[k], g.typed_data() + r * H, dw + c * H, H);
        },
        [&](int64_t lo, int64_t n) { std::memset(dw + lo * H, 0, sizeof(float) * n * H); });
  });
  return ffi::Error::Success();
}

ffi::Error SparseInputInputGrad(ffi::ThreadPool pool, F32 g, F32 w, S32 row, S32 col,
                                S32 count, Out out) {
  const int64_t B = g.dimensions()[0], I = w.dimensions()[0], H = g.dimensions()[1];
  auto en = GetEntries(row, col, count, B, I);
  if (en.has_error()) return en.error();
  const Entries& e = en.value();
  const ColumnTiles tiles(e, I);
  float* dval = out->typed_data();
  std::memset(dval, 0, sizeof(float) * out->element_count());
  RunParallel(pool, tiles.parts(), [&](int t) {
    tiles.ForEachEntry(t, [&](int32_t k, int64_t r, int64_t c) {
      dval[k] = Dot(g.typed_data() + r * H, w.typed_data() + c * H, H);
    });
  });
  return ffi::Error::Success();
}

ffi::Error SparseOutputForward(ffi::ThreadPool pool, F32 h, F32 v, F32 c, S32 row, S32 col,
                               S32 count, Out out) {
  auto en = GetEntries(row, col, count, h.dimensions()[0], c.element_count());
  if (en.has_error()) return en.error();
  const Entries& e = en.value();
  const int64_t H = h.dimensions()[1], I = c.element_count();
  if (auto err = CheckItemsMajor(v, I, H); err.failure()) return err;
  const ColumnTiles tiles(e, I);
  float* o = out->typed_data();
  std::memset(o, 0, sizeof(float) * out->element_count());
  RunParallel(pool, tiles.parts(), [&](int t) {
    tiles.ForEachEntry(t, [&](int32_t k, int64_t r, int64_t col) {
      o[k] = Dot(h.typed_data() + r * H, v.typed_data() + col * H, H) + c.typed_data()[col];
    });
  });
  return ffi::Error::Success();
}

ffi::Error SparseOutputBackward(ffi::ThreadPool pool, F32 g, F32 h, F32 v, S32 row,
                                S32 col, S32 count, Out dh_out, Out dv_out, Out dc_out) {
  auto en = GetEntries(row, col, count, h.dimensions()[0], dc_out->element_count());
  if (en.has_error()) return en.error();
  const Entries& e = en.value();
  const int64_t B = h.dimensions()[0], H = h.dimensions()[1], I = dc_out->element_count();
  if (auto err = CheckItemsMajor(v, I, H); err.failure()) return err;
  const ColumnTiles tiles(e, I);
  float* dv = dv_out->typed_data();
  float* dc = dc_out->typed_data();
  std::memset(dc, 0, sizeof(float) * I);
  WithPartialSums(pool, tiles, dh_out->typed_data(), B * H, [&](int t, float* dh) {
    tiles.ForEachEntry(
        t,
        [&](int32_t k, int64_t r, int64_t col) {
          const float a = g.typed_data()[k];
          Axpy(a, v.typed_data() + col * H, dh + r * H, H);
          Axpy(a, h.typed_data() + r * H, dv + col * H, H);
          dc[col] += a;
        },
        [&](int64_t lo, int64_t n) { std::memset(dv + lo * H, 0, sizeof(float) * n * H); });
  });
  return ffi::Error::Success();
}

// SGD with momentum on one parameter array, in place, in one pass (XLA:CPU runs it
// as two loops, plus a third for the gradient's norm: 7 passes over memory, not 5):
//   m' = g + momentum * m,  p' = p + (-lr) * m',  sumsq = sum of g^2
// with optax.sgd's operation order (trace, then scale by -lr, then add).
ffi::Error SgdMomentum(ffi::ThreadPool pool, F32 p, F32 m, F32 g, F32 lr, Out p_out,
                       Out m_out, Out sumsq, float momentum) {
  const int64_t n = p.element_count();
  if (m.element_count() != n || g.element_count() != n || p_out->element_count() != n ||
      m_out->element_count() != n) {
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "sgd_momentum: parameter, momentum and gradient sizes differ");
  }
  const float neg_lr = -lr.typed_data()[0];
  constexpr int64_t kChunk = 1 << 16;  // floats per part: 256 KiB of each array
  const int parts = static_cast<int>(std::clamp<int64_t>((n + kChunk - 1) / kChunk, 1, 64));
  std::vector<double> part_sums(parts, 0.0);
  RunParallel(pool, parts, [&](int t) {
    const int64_t lo = n * t / parts, len = n * (t + 1) / parts - lo;
    // Local pointers: the loop then vectorizes with contiguous loads (through the
    // lambda's captures GCC emitted gathers). p and m are updated in place.
    const float* pp = p.typed_data() + lo;
    const float* mm = m.typed_data() + lo;
    const float* __restrict gg = g.typed_data() + lo;
    float* po = p_out->typed_data() + lo;
    float* mo = m_out->typed_data() + lo;
    const float mu = momentum, step = neg_lr;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < len; ++i) {
      const float gi = gg[i];
      const float mi = gi + mu * mm[i];
      mo[i] = mi;
      po[i] = pp[i] + mi * step;
      s += gi * gi;
    }
    part_sums[t] = s;
  });
  double total = 0.0;
  for (double v : part_sums) total += v;
  sumsq->typed_data()[0] = static_cast<float>(total);
  return ffi::Error::Success();
}

}  // namespace

// A handler's bindings: the thread pool, `floats` float arrays, then row, col, count.
#define AUTOREC_ARGS(floats) \
  ffi::Ffi::Bind().Ctx<ffi::ThreadPool>() floats.Arg<S32>().Arg<S32>().Arg<S32>()
#define AUTOREC_BIND AUTOREC_ARGS(.Arg<F32>().Arg<F32>()).Ret<F32>()
#define AUTOREC_OUTPUT_ARGS AUTOREC_ARGS(.Arg<F32>().Arg<F32>().Arg<F32>())

XLA_FFI_DEFINE_HANDLER_SYMBOL(AutorecSparseInputForward, SparseInputForward, AUTOREC_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(AutorecSparseInputWeightGrad, SparseInputWeightGrad,
                              AUTOREC_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(AutorecSparseInputInputGrad, SparseInputInputGrad,
                              AUTOREC_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(AutorecSparseOutputForward, SparseOutputForward,
                              AUTOREC_OUTPUT_ARGS.Ret<F32>());
XLA_FFI_DEFINE_HANDLER_SYMBOL(AutorecSparseOutputBackward, SparseOutputBackward,
                              AUTOREC_OUTPUT_ARGS.Ret<F32>().Ret<F32>().Ret<F32>());
XLA_FFI_DEFINE_HANDLER_SYMBOL(AutorecSgdMomentum, SgdMomentum,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Attr<float>("momentum"));
