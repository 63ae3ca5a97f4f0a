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
//   SparseOutputBackwardNoKernel  dh and dc only
// and SGD with momentum (SgdMomentum), also for a kernel whose gradient x^T @ g or
// G^T @ h is summed from the entries inside the update (SgdMomentumEntries).
// Work is O(count * H) instead of O(B * I * H). Every kernel walks the entries by
// tiles of kTile consecutive items (counting sorts per call), so each item's row of W
// or V is read from memory once per call and then sits in L2 with the [B, H]
// operands. Within a tile, sums run in registers over several entries before they
// touch memory: a gradient row sums all of its item's entries and is written once; a
// [B, H] output row sums the tile's entries of its row (consecutive, as a batch lists
// its entries row by row). Above kParallelEntries entries, the tiles are split into up
// to four parts run on XLA's own intra-op thread pool (no threads of ours competing
// with it); [B, H] outputs are summed from per-part copies.

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

// Sixteen floats in GCC's portable vector extension (one AVX-512 register, two AVX2
// or four SSE/NEON ones); loads and stores may be unaligned and alias floats.
typedef float Vec __attribute__((vector_size(64)));
typedef float VecU __attribute__((vector_size(64), aligned(4), __may_alias__));
constexpr int64_t kLanes = 16;
#ifdef __AVX512F__
constexpr int kBlock = 8;  // vectors summed at once: 8 of AVX-512's 32 registers
#else
constexpr int kBlock = 4;  // 8 of AVX2's 16
#endif
constexpr int kMaxRun = 32;  // rows summed per call of SumRows

inline Vec Load(const float* p) { return *reinterpret_cast<const VecU*>(p); }
inline void Store(float* p, Vec v) { *reinterpret_cast<VecU*>(p) = v; }

template <int NV>
inline void SumRowsBlock(int n, const float* a, const float* const* x, float* y,
                         int64_t k, bool add) {
  Vec acc[NV];
#pragma GCC unroll 8
  for (int i = 0; i < NV; ++i) acc[i] = add ? Load(y + k + i * kLanes) : Vec{};
  for (int j = 0; j < n; ++j) {
    const Vec s = Vec{} + a[j];
    const float* xj = x[j] + k;
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) acc[i] += s * Load(xj + i * kLanes);
  }
#pragma GCC unroll 8
  for (int i = 0; i < NV; ++i) Store(y + k + i * kLanes, acc[i]);
}

// y = (add ? y : 0) + sum of a[j] * x[j] over j < n, rows of H floats. Each block of
// y stays in registers while the n rows are added, so y is read and written once per
// call rather than once per row (the kernels' inner loops were bound by that traffic).
void SumRows(int n, const float* a, const float* const* x, float* y, int64_t H,
             bool add) {
  int64_t k = 0;
  for (; k + kBlock * kLanes <= H; k += kBlock * kLanes) {
    SumRowsBlock<kBlock>(n, a, x, y, k, add);
  }
  for (; k + kLanes <= H; k += kLanes) SumRowsBlock<1>(n, a, x, y, k, add);
  for (; k < H; ++k) {
    float s = add ? y[k] : 0.0f;
    for (int j = 0; j < n; ++j) s += a[j] * x[j][k];
    y[k] = s;
  }
}

inline float Sum(Vec v) {
  float s = 0.0f;
  for (int l = 0; l < kLanes; ++l) s += v[l];
  return s;
}

// out[j] = x[j] . y for j < N, rows of H floats: each vector of y is loaded once for
// the N products, each product in two interleaved sums (more FMAs in flight).
template <int N>
void SharedDots(const float* const* x, const float* y, int64_t H, float* out) {
  Vec acc[2][N] = {};
  int64_t k = 0;
  for (; k + 2 * kLanes <= H; k += 2 * kLanes) {
    const Vec y0 = Load(y + k), y1 = Load(y + k + kLanes);
#pragma GCC unroll 4
    for (int j = 0; j < N; ++j) {
      acc[0][j] += Load(x[j] + k) * y0;
      acc[1][j] += Load(x[j] + k + kLanes) * y1;
    }
  }
  for (; k + kLanes <= H; k += kLanes) {
    const Vec y0 = Load(y + k);
    for (int j = 0; j < N; ++j) acc[0][j] += Load(x[j] + k) * y0;
  }
  for (int j = 0; j < N; ++j) {
    float s = Sum(acc[0][j] + acc[1][j]);
    for (int64_t kk = k; kk < H; ++kk) s += x[j][kk] * y[kk];
    out[j] = s;
  }
}

// The entries in two orders, both grouped by tiles of kTile consecutive items (so a
// tile's rows of W or V are read from memory once per call and then stay in L2):
// by column (each item's entries together: a gradient row summed in registers and
// written once) and, within each tile, in their given order (a batch lists them row
// by row, so each row's entries in the tile are consecutive: a [B, H] output row
// summed in registers). The tiles are split into parts of about the same number of
// entries, one per thread.
class EntryOrder {
 public:
  enum Orders { kByColumn = 1, kByRow = 2 };

  // `parts`, where given, fixes the number of parts and balances them by items (for
  // a pass over every item's rows), else it follows the entry count.
  EntryOrder(const Entries& en, int64_t num_items, int orders, int parts = 0)
      : en_(en), items_(num_items), tiles_((num_items + kTile - 1) / kTile),
        parts_(parts > 0 ? parts : NumParts(en.count)), by_items_(parts > 0),
        col_start_(num_items + 1, 0) {
    for (int32_t e = 0; e < en.count; ++e) ++col_start_[en.col[e] + 1];
    for (int64_t c = 0; c < items_; ++c) col_start_[c + 1] += col_start_[c];
    if (orders & kByColumn) {
      by_col_.resize(en.count);
      std::vector<int32_t> next(col_start_.begin(), col_start_.end() - 1);
      for (int32_t e = 0; e < en.count; ++e) by_col_[next[en.col[e]]++] = e;
    }
    if (orders & kByRow) {
      by_row_.resize(en.count);
      std::vector<int32_t> next(tiles_);
      for (int64_t t = 0; t < tiles_; ++t) next[t] = TileStart(t);
      for (int32_t e = 0; e < en.count; ++e) by_row_[next[en.col[e] / kTile]++] = e;
    }
  }

  int parts() const { return parts_; }

  // Calls fn(lo, n) for part t's tiles, items [lo, lo + n); every tile is in one part.
  template <typename Fn>
  void ForEachTile(int t, Fn fn) const {
    for (int64_t tile = Bound(t); tile < Bound(t + 1); ++tile) {
      const int64_t lo = tile * kTile;
      fn(lo, std::min(kTile, items_ - lo));
    }
  }

  // Calls fn(c, ks, n) for every item c in [lo, lo + n_items): its n entries ks
  // (n may be 0), in their given order.
  template <typename Fn>
  void ForEachColumn(int64_t lo, int64_t n_items, Fn fn) const {
    for (int64_t c = lo; c < lo + n_items; ++c) {
      fn(c, by_col_.data() + col_start_[c], col_start_[c + 1] - col_start_[c]);
    }
  }

  // Calls fn(r, ks, n) for each run of n >= 1 consecutive entries ks of one row r
  // among the entries of the tile starting at item lo.
  template <typename Fn>
  void ForEachRowRun(int64_t lo, Fn fn) const {
    const int64_t tile = lo / kTile;
    const int32_t* ks = by_row_.data();
    for (int32_t p = TileStart(tile), end = TileStart(tile + 1); p < end;) {
      const int32_t r = en_.row[ks[p]];
      int32_t q = p + 1;
      while (q < end && en_.row[ks[q]] == r) ++q;
      fn(int64_t{r}, ks + p, q - p);
      p = q;
    }
  }

 private:
  int32_t TileStart(int64_t tile) const {
    return col_start_[std::min(tile * kTile, items_)];
  }

  int64_t Bound(int t) const {
    if (t == 0) return 0;
    if (t >= parts_) return tiles_;
    if (by_items_) return tiles_ * t / parts_;
    const int32_t target = static_cast<int32_t>(int64_t{en_.count} * t / parts_);
    int64_t lo = 0, hi = tiles_;  // the first tile starting at or after target
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (TileStart(mid) < target) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  Entries en_;
  int64_t items_, tiles_;
  int parts_;
  bool by_items_;
  std::vector<int32_t> col_start_, by_col_, by_row_;
};

// y (+)= sum over the n entries ks of coef(k) * x(k) (rows of H floats), kMaxRun at a
// time; without `add` y is overwritten (zeroed when n is 0).
template <typename Coef, typename RowOf>
void SumEntries(const int32_t* ks, int32_t n, Coef coef, RowOf x_of, float* y, int64_t H,
                bool add) {
  if (n == 0 && !add) std::memset(y, 0, sizeof(float) * H);
  float a[kMaxRun];
  const float* x[kMaxRun];
  for (int32_t p = 0; p < n; p += kMaxRun) {
    const int m = static_cast<int>(std::min<int32_t>(kMaxRun, n - p));
    for (int j = 0; j < m; ++j) {
      a[j] = coef(ks[p + j]);
      x[j] = x_of(ks[p + j]);
    }
    SumRows(m, a, x, y, H, add || p > 0);
  }
}

// out[k] = x(k) . y for the n entries ks, four at a time.
template <typename RowOf>
void DotEntries(const int32_t* ks, int32_t n, RowOf x_of, const float* y, int64_t H,
                float* out) {
  const float* x[4];
  float d[4];
  for (int32_t p = 0; p < n; p += 4) {
    const int m = static_cast<int>(std::min<int32_t>(4, n - p));
    for (int j = 0; j < m; ++j) x[j] = x_of(ks[p + j]);
    switch (m) {
      case 4: SharedDots<4>(x, y, H, d); break;
      case 3: SharedDots<3>(x, y, H, d); break;
      case 2: SharedDots<2>(x, y, H, d); break;
      default: SharedDots<1>(x, y, H, d);
    }
    for (int j = 0; j < m; ++j) out[ks[p + j]] = d[j];
  }
}

// Runs body(t, out_t) for every part t with out_t a zeroed [size] array of its own
// (`out` itself for part 0), then sums them into `out`.
template <typename Body>
void WithPartialSums(ffi::ThreadPool& pool, const EntryOrder& order, float* out,
                     int64_t size, Body body) {
  std::memset(out, 0, sizeof(float) * size);
  std::vector<std::vector<float>> parts(order.parts() - 1);
  RunParallel(pool, order.parts(), [&](int t) {
    if (t == 0) return body(0, out);
    parts[t - 1].assign(size, 0.0f);
    body(t, parts[t - 1].data());
  });
  for (const auto& part : parts) {
    const float* p = part.data();
#pragma omp simd
    for (int64_t k = 0; k < size; ++k) out[k] += p[k];
  }
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
  const EntryOrder order(en.value(), I, EntryOrder::kByRow);
  const float* v = val.typed_data();
  const float* W = w.typed_data();
  const int32_t* cols = en.value().col;
  WithPartialSums(pool, order, out->typed_data(), B * H, [&](int t, float* o) {
    order.ForEachTile(t, [&](int64_t lo, int64_t) {
      order.ForEachRowRun(lo, [&](int64_t r, const int32_t* ks, int32_t n) {
        SumEntries(ks, n, [&](int32_t k) { return v[k]; },
                   [&](int32_t k) { return W + cols[k] * H; }, o + r * H, H, true);
      });
    });
  });
  return ffi::Error::Success();
}

ffi::Error SparseInputWeightGrad(ffi::ThreadPool pool, F32 val, F32 g, S32 row, S32 col,
                                 S32 count, Out out) {
  const int64_t B = g.dimensions()[0], I = out->dimensions()[0], H = g.dimensions()[1];
  auto en = GetEntries(row, col, count, B, I, val.element_count());
  if (en.has_error()) return en.error();
  const EntryOrder order(en.value(), I, EntryOrder::kByColumn);
  const float* v = val.typed_data();
  const float* G = g.typed_data();
  const int32_t* rows = en.value().row;
  float* dw = out->typed_data();
  RunParallel(pool, order.parts(), [&](int t) {
    order.ForEachTile(t, [&](int64_t lo, int64_t n_items) {
      order.ForEachColumn(lo, n_items, [&](int64_t c, const int32_t* ks, int32_t n) {
        SumEntries(ks, n, [&](int32_t k) { return v[k]; },
                   [&](int32_t k) { return G + rows[k] * H; }, dw + c * H, H, false);
      });
    });
  });
  return ffi::Error::Success();
}

// out[k] = x[row[k]] . y[col[k]] (+ bias[col[k]]) for k < count, 0 past it.
ffi::Error DotsAtEntries(ffi::ThreadPool& pool, const Entries& e, const float* x,
                         const float* y, const float* bias, int64_t I, int64_t H,
                         float* out, int64_t capacity) {
  const EntryOrder order(e, I, EntryOrder::kByColumn);
  std::memset(out, 0, sizeof(float) * capacity);
  RunParallel(pool, order.parts(), [&](int t) {
    order.ForEachTile(t, [&](int64_t lo, int64_t n_items) {
      order.ForEachColumn(lo, n_items, [&](int64_t c, const int32_t* ks, int32_t n) {
        DotEntries(ks, n, [&](int32_t k) { return x + e.row[k] * H; }, y + c * H, H, out);
        if (bias != nullptr) {
          for (int32_t j = 0; j < n; ++j) out[ks[j]] += bias[c];
        }
      });
    });
  });
  return ffi::Error::Success();
}

ffi::Error SparseInputInputGrad(ffi::ThreadPool pool, F32 g, F32 w, S32 row, S32 col,
                                S32 count, Out out) {
  const int64_t B = g.dimensions()[0], I = w.dimensions()[0], H = g.dimensions()[1];
  auto en = GetEntries(row, col, count, B, I);
  if (en.has_error()) return en.error();
  return DotsAtEntries(pool, en.value(), g.typed_data(), w.typed_data(), nullptr, I, H,
                       out->typed_data(), out->element_count());
}

ffi::Error SparseOutputForward(ffi::ThreadPool pool, F32 h, F32 v, F32 c, S32 row, S32 col,
                               S32 count, Out out) {
  auto en = GetEntries(row, col, count, h.dimensions()[0], c.element_count());
  if (en.has_error()) return en.error();
  const int64_t H = h.dimensions()[1], I = c.element_count();
  if (auto err = CheckItemsMajor(v, I, H); err.failure()) return err;
  return DotsAtEntries(pool, en.value(), h.typed_data(), v.typed_data(), c.typed_data(), I,
                       H, out->typed_data(), out->element_count());
}

// dh, dc and (where dv is not null) dV of the output layer at the entries.
ffi::Error OutputBackward(ffi::ThreadPool& pool, F32& g, F32& h, F32& v, S32& row, S32& col,
                          S32& count, float* dh_out, float* dv, Out& dc_out) {
  auto en = GetEntries(row, col, count, h.dimensions()[0], dc_out->element_count());
  if (en.has_error()) return en.error();
  const Entries& e = en.value();
  const int64_t B = h.dimensions()[0], H = h.dimensions()[1], I = dc_out->element_count();
  if (auto err = CheckItemsMajor(v, I, H); err.failure()) return err;
  const EntryOrder order(e, I, EntryOrder::kByColumn | EntryOrder::kByRow);
  const float* G = g.typed_data();
  const float* Hs = h.typed_data();
  const float* V = v.typed_data();
  float* dc = dc_out->typed_data();
  const auto coef = [&](int32_t k) { return G[k]; };
  WithPartialSums(pool, order, dh_out, B * H, [&](int t, float* dh) {
    order.ForEachTile(t, [&](int64_t lo, int64_t n_items) {
      order.ForEachColumn(lo, n_items, [&](int64_t c, const int32_t* ks, int32_t n) {
        if (dv != nullptr) {
          SumEntries(ks, n, coef, [&](int32_t k) { return Hs + e.row[k] * H; }, dv + c * H,
                     H, false);
        }
        float s = 0.0f;
        for (int32_t j = 0; j < n; ++j) s += G[ks[j]];
        dc[c] = s;
      });
      order.ForEachRowRun(lo, [&](int64_t r, const int32_t* ks, int32_t n) {
        SumEntries(ks, n, coef, [&](int32_t k) { return V + e.col[k] * H; }, dh + r * H, H,
                   true);
      });
    });
  });
  return ffi::Error::Success();
}

ffi::Error SparseOutputBackward(ffi::ThreadPool pool, F32 g, F32 h, F32 v, S32 row,
                                S32 col, S32 count, Out dh_out, Out dv_out, Out dc_out) {
  return OutputBackward(pool, g, h, v, row, col, count, dh_out->typed_data(),
                        dv_out->typed_data(), dc_out);
}

// Without dV: the output kernel's gradient is left to SgdMomentumEntries.
ffi::Error SparseOutputBackwardNoKernel(ffi::ThreadPool pool, F32 g, F32 h, F32 v, S32 row,
                                        S32 col, S32 count, Out dh_out, Out dc_out) {
  return OutputBackward(pool, g, h, v, row, col, count, dh_out->typed_data(), nullptr,
                        dc_out);
}

// SGD with momentum over len floats, in one pass, with optax.sgd's operation order
// (trace, then scale by -lr, then add); returns the sum of g^2. p and m may be
// updated in place (po == pp, mo == mm).
inline float SgdMomentumRun(const float* pp, const float* mm, const float* __restrict gg,
                            float* po, float* mo, int64_t len, float mu, float step) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < len; ++i) {
    const float gi = gg[i];
    const float mi = gi + mu * mm[i];
    mo[i] = mi;
    po[i] = pp[i] + mi * step;
    s += gi * gi;
  }
  return s;
}

// SGD with momentum on one parameter array, in place, in one pass (XLA:CPU runs it
// as two loops, plus a third for the gradient's norm: 7 passes over memory, not 5):
//   m' = g + momentum * m,  p' = p + (-lr) * m',  sumsq = sum of g^2
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
    part_sums[t] = SgdMomentumRun(p.typed_data() + lo, m.typed_data() + lo,
                                  g.typed_data() + lo, p_out->typed_data() + lo,
                                  m_out->typed_data() + lo, len, momentum, neg_lr);
  });
  double total = 0.0;
  for (double v : part_sums) total += v;
  sumsq->typed_data()[0] = static_cast<float>(total);
  return ffi::Error::Success();
}

// The same update of an [I, H] kernel whose gradient is given by a batch's entries,
// never built: row c of the gradient is the sum over the factors f < `factors` and
// the entries e of item c of coef_f[e] * a_f[row[e]], with coef_f [E] and a_f [B, H]
// (x^T @ g for the first layer: coef the input values, a the gradient at its output;
// G^T @ h for the output layer: coef the gradient at the entries, a the last hidden
// layer; a tied kernel, both). The first factor comes as `coef` and `a`, further ones
// as the first pairs of the remaining arguments. Each gradient row is summed in
// registers next to the update of its parameter and momentum rows, so the step moves
// 4 kernel-sized arrays through memory instead of 7 (the gradient written, then read).
// Each factor's rows are summed exactly as SparseInputWeightGrad and
// SparseOutputBackward sum them, then added: the same parameters as with those
// gradients. The arguments after the factors are not read: they order the update
// after the operations that compute them (the kernel's other readers), so that XLA
// updates it in place instead of copying it for them.
ffi::Error SgdMomentumEntries(ffi::ThreadPool pool, F32 p, F32 m, F32 coef, F32 a, S32 row,
                              S32 col, S32 count, F32 lr, ffi::RemainingArgs rest,
                              Out p_out, Out m_out, Out sumsq, float momentum,
                              int32_t factors) {
  const auto dims = p.dimensions();
  if (dims.size() != 2 || a.dimensions().size() != 2 || a.dimensions()[1] != dims[1] ||
      m.element_count() != p.element_count() ||
      p_out->element_count() != p.element_count() ||
      m_out->element_count() != p.element_count() || factors < 1 ||
      rest.size() < 2 * static_cast<size_t>(factors - 1)) {
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "sgd_momentum_entries: parameter [I, H], momentum [I, H], and factors "
                      "coef [E], a [B, H] expected");
  }
  const int64_t I = dims[0], H = dims[1], B = a.dimensions()[0];
  std::vector<const float*> coefs{coef.typed_data()}, as{a.typed_data()};
  for (int32_t f = 1; f < factors; ++f) {
    auto c = rest.get<F32>(2 * (f - 1));
    auto af = rest.get<F32>(2 * (f - 1) + 1);
    if (c.has_error() || af.has_error() || c->element_count() != coef.element_count() ||
        af->element_count() != a.element_count()) {
      return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                        "sgd_momentum_entries: every factor's coef and a must be float32 of "
                        "the first factor's sizes");
    }
    coefs.push_back(c->typed_data());
    as.push_back(af->typed_data());
  }
  auto en = GetEntries(row, col, count, B, I, coef.element_count());
  if (en.has_error()) return en.error();
  const EntryOrder order(en.value(), I, EntryOrder::kByColumn, NumParts(kParallelEntries));
  const float step = -lr.typed_data()[0];
  const int32_t* rows = en.value().row;
  std::vector<double> part_sums(order.parts(), 0.0);
  RunParallel(pool, order.parts(), [&](int t) {
    std::vector<float> grad(H), factor(H);
    double total = 0.0;
    order.ForEachTile(t, [&](int64_t lo, int64_t n_items) {
      order.ForEachColumn(lo, n_items, [&](int64_t c, const int32_t* ks, int32_t n) {
        for (size_t f = 0; f < coefs.size(); ++f) {
          const float* cf = coefs[f];
          const float* A = as[f];
          SumEntries(ks, n, [&](int32_t k) { return cf[k]; },
                     [&](int32_t k) { return A + rows[k] * H; },
                     f == 0 ? grad.data() : factor.data(), H, false);
          if (f > 0) {
            float* __restrict g = grad.data();
            const float* __restrict q = factor.data();
#pragma omp simd
            for (int64_t k = 0; k < H; ++k) g[k] += q[k];
          }
        }
        total += SgdMomentumRun(p.typed_data() + c * H, m.typed_data() + c * H,
                                grad.data(), p_out->typed_data() + c * H,
                                m_out->typed_data() + c * H, H, momentum, step);
      });
    });
    part_sums[t] = total;
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
XLA_FFI_DEFINE_HANDLER_SYMBOL(AutorecSparseOutputBackwardNoKernel,
                              SparseOutputBackwardNoKernel,
                              AUTOREC_OUTPUT_ARGS.Ret<F32>().Ret<F32>());
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
XLA_FFI_DEFINE_HANDLER_SYMBOL(AutorecSgdMomentumEntries, SgdMomentumEntries,
                              AUTOREC_ARGS(.Arg<F32>().Arg<F32>().Arg<F32>().Arg<F32>())
                                  .Arg<F32>()
                                  .RemainingArgs()
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Attr<float>("momentum")
                                  .Attr<int32_t>("factors"));
