// Standalone check of the volta and turing attention kernels (packages/cuda-volta/kernels/{volta,
// turing}) on any CUDA GPU, before the addon's runtime dispatches them. Plain C++ on the driver API:
// it loads a kernel module (fatbin, or PTX that the driver JIT-compiles, e.g. the compute_70 PTX
// built by CUDA 11.8), launches the kernels with the ampere path's conventions (FaFwdParams by
// value, the same grid/block, split-KV partials merged by fa_combine_*), and compares with a
// float64 CPU reference on fresh random inputs, outputs poisoned before each run.
//
//   check suite   <combine.fatbin> <label>=<module> ...   correctness suite, one column per module
//   check profile <module> <symbol-prefix> <seq> <hd>     one prefill launch (for ncu)
//   check time    <label>=<module> ...                    event timing of a few shapes
#include <cuda.h>
// CUDA 13's header maps this to cuEventElapsedTime_v2 (12.8+); the original symbol is in every
// driver, so the harness also links against an older stub libcuda.
#undef cuEventElapsedTime
extern "C" CUresult CUDAAPI cuEventElapsedTime(float* ms, CUevent a, CUevent b);

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../kernels/common/kernel_names.h"
#include "../kernels/common/params.h"
#include "../kernels/turing/configs.h"
#include "../kernels/volta/configs.h"

#define CK(x)                                                                           \
  do {                                                                                  \
    CUresult r_ = (x);                                                                  \
    if (r_ != CUDA_SUCCESS) {                                                           \
      const char* n_ = "?";                                                             \
      cuGetErrorName(r_, &n_);                                                          \
      std::fprintf(stderr, "%s:%d %s -> %s\n", __FILE__, __LINE__, #x, n_);             \
      std::exit(2);                                                                     \
    }                                                                                   \
  } while (0)

struct Cfg {
  const char* path;
  const char* role;
  int hd, bm, bn, w, smem;
  const char* f16;  // kernel symbols, from the configuration table (kernel_names.h)
  const char* bf16;
  const char* symbol(const char* dt) const { return std::strcmp(dt, "bf16") == 0 ? bf16 : f16; }
};
static std::vector<Cfg> g_cfgs;
#define ADD_CFG(PATH, SMEM, role, HD, BM, BN, W, S)                                             \
  g_cfgs.push_back({#PATH, #role, HD, BM, BN, W, SMEM(HD, BM, BN, W, S),                         \
                    FA_KERNEL_SYMBOL_STR(PATH, role, f16, HD, BM, BN, W, S),                    \
                    FA_KERNEL_SYMBOL_STR(PATH, role, bf16, HD, BM, BN, W, S)});
#define ADD_VOLTA(...) ADD_CFG(volta, FA_VOLTA_SMEM, __VA_ARGS__)
#define ADD_TURING(...) ADD_CFG(turing, FA_TURING_SMEM, __VA_ARGS__)

static const Cfg* find_cfg(const std::string& path, const std::string& role, int hd) {
  for (auto& c : g_cfgs)
    if (path == c.path && role == c.role && hd == c.hd) return &c;
  return nullptr;
}
static std::vector<char> read_file(const std::string& f, bool text) {
  std::ifstream in(f, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", f.c_str());
    std::exit(2);
  }
  std::vector<char> d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text) d.push_back('\0');
  return d;
}
static CUmodule load_module(const std::string& f) {
  const bool ptx = f.size() > 4 && f.substr(f.size() - 4) == ".ptx";
  auto data = read_file(f, ptx);
  CUmodule m;
  CK(cuModuleLoadData(&m, data.data()));
  return m;
}

// ---- numbers ----
static uint16_t f2h(float x) {
  _Float16 h = (_Float16)x;
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}
static float h2f(uint16_t u) {
  _Float16 h;
  std::memcpy(&h, &u, 2);
  return (float)h;
}
static uint16_t f2bf(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
static float bf2f(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

struct Case {
  std::string name;
  int batch, sq, sk, hq, hkv, hd;
  int maskKind;  // 0 none, 1 causal, 2 window
  int left, right;
  std::vector<int> seqlens;  // empty = all seqK
  int splits;
  bool bf16;
};

struct Ref {
  std::vector<double> out, lse;
};

static void reference(const Case& c, const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                      Ref& r) {
  const int g = c.hq / c.hkv;
  const double scale = 1.0 / std::sqrt((double)c.hd);
  r.out.assign((size_t)c.batch * c.sq * c.hq * c.hd, 0.0);
  r.lse.assign((size_t)c.batch * c.hq * c.sq, -INFINITY);
  const int nth = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> th;
  for (int w = 0; w < nth; ++w)
    th.emplace_back([&, w] {
      std::vector<double> s(c.sk);
      for (int job = w; job < c.batch * c.hq; job += nth) {
        const int b = job / c.hq, h = job % c.hq, kh = h / g;
        const int lk = c.seqlens.empty() ? c.sk : c.seqlens[b];
        for (int i = 0; i < c.sq; ++i) {
          const int64_t off = (int64_t)lk - c.sq;
          int64_t lo = 0, hi = lk - 1;
          if (c.maskKind == 1) hi = std::min<int64_t>(hi, i + off);
          if (c.maskKind == 2) {
            lo = std::max<int64_t>(lo, i + off - c.left);
            hi = std::min<int64_t>(hi, i + off + c.right);
          }
          const float* qp = &q[(((size_t)b * c.sq + i) * c.hq + h) * c.hd];
          double mx = -INFINITY;
          for (int64_t j = lo; j <= hi; ++j) {
            const float* kp = &k[(((size_t)b * c.sk + j) * c.hkv + kh) * c.hd];
            double d = 0;
            for (int x = 0; x < c.hd; ++x) d += (double)qp[x] * kp[x];
            s[j] = d * scale;
            mx = std::max(mx, s[j]);
          }
          if (hi < lo) continue;
          double sum = 0;
          for (int64_t j = lo; j <= hi; ++j) sum += std::exp(s[j] - mx);
          double* op = &r.out[(((size_t)b * c.sq + i) * c.hq + h) * c.hd];
          for (int64_t j = lo; j <= hi; ++j) {
            const double p = std::exp(s[j] - mx) / sum;
            const float* vp = &v[(((size_t)b * c.sk + j) * c.hkv + kh) * c.hd];
            for (int x = 0; x < c.hd; ++x) op[x] += p * vp[x];
          }
          r.lse[((size_t)b * c.hq + h) * c.sq + i] = mx + std::log(sum);
        }
      }
    });
  for (auto& t : th) t.join();
}

struct Dev {
  CUdeviceptr q = 0, k = 0, v = 0, out = 0, lse = 0, po = 0, plse = 0, sl = 0;
  void free_all() {
    for (CUdeviceptr p : {q, k, v, out, lse, po, plse, sl})
      if (p) cuMemFree(p);
  }
};

// Runs one case with one module; returns out (as float) and lse.
static bool run_case(const Case& c, CUmodule mod, CUfunction combine, const char* path, const std::vector<uint16_t>& qh,
                     const std::vector<uint16_t>& kh, const std::vector<uint16_t>& vh, std::vector<float>& out,
                     std::vector<float>& lse, std::string& err) {
  const bool decode = c.sq <= 16;
  const Cfg* cfg = find_cfg(path, decode ? "decode" : "prefill", c.hd);
  if (!cfg) {
    err = "no config";
    return false;
  }
  const char* dt = c.bf16 ? "bf16" : "f16";
  CUfunction fn;
  if (cuModuleGetFunction(&fn, mod, cfg->symbol(dt)) != CUDA_SUCCESS) {
    err = "missing symbol " + std::string(cfg->symbol(dt));
    return false;
  }
  CK(cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, cfg->smem));
  const size_t nq = qh.size(), nk = kh.size(), nl = (size_t)c.batch * c.hq * c.sq;
  Dev d;
  CK(cuMemAlloc(&d.q, nq * 2));
  CK(cuMemAlloc(&d.k, nk * 2));
  CK(cuMemAlloc(&d.v, nk * 2));
  CK(cuMemAlloc(&d.out, nq * 2));
  CK(cuMemAlloc(&d.lse, nl * 4));
  CK(cuMemcpyHtoD(d.q, qh.data(), nq * 2));
  CK(cuMemcpyHtoD(d.k, kh.data(), nk * 2));
  CK(cuMemcpyHtoD(d.v, vh.data(), nk * 2));
  CK(cuMemsetD8(d.out, 0xFF, nq * 2));  // NaN poison: unwritten elements fail
  CK(cuMemsetD8(d.lse, 0xFF, nl * 4));
  if (!c.seqlens.empty()) {
    CK(cuMemAlloc(&d.sl, c.batch * 4));
    CK(cuMemcpyHtoD(d.sl, c.seqlens.data(), c.batch * 4));
  }
  const int g = c.hq / c.hkv;
  FaFwdParams p{};
  p.q = (void*)d.q;
  p.k = (void*)d.k;
  p.v = (void*)d.v;
  p.out = (void*)d.out;
  p.lse = (float*)d.lse;
  p.seqlens_k = c.seqlens.empty() ? nullptr : (const int*)d.sl;
  p.q_row_stride = (int64_t)c.hq * c.hd;
  p.q_batch_stride = (int64_t)c.sq * p.q_row_stride;
  p.k_row_stride = (int64_t)c.hkv * c.hd;
  p.k_batch_stride = (int64_t)c.sk * p.k_row_stride;
  p.batch = c.batch;
  p.seq_q = c.sq;
  p.seq_k = c.sk;
  p.heads_q = c.hq;
  p.heads_kv = c.hkv;
  p.group = g;
  p.head_dim = c.hd;
  p.band_left = c.maskKind == 2 ? c.left : FA_BAND_INF;
  p.band_right = c.maskKind == 0 ? FA_BAND_INF : (c.maskKind == 1 ? 0 : c.right);
  p.scale = (float)(1.0 / std::sqrt((double)c.hd));
  p.scale_log2 = (float)(p.scale * 1.4426950408889634);
  p.pack_gqa = decode ? 1 : 0;
  p.rows_total = decode ? c.sq * g : c.sq;
  p.num_splits = c.splits;
  if (c.splits > 1) {
    CK(cuMemAlloc(&d.po, (size_t)c.splits * nl * c.hd * 4));
    CK(cuMemAlloc(&d.plse, (size_t)c.splits * nl * 4));
    CK(cuMemsetD8(d.po, 0xFF, (size_t)c.splits * nl * c.hd * 4));
    CK(cuMemsetD8(d.plse, 0xFF, (size_t)c.splits * nl * 4));
    p.part_o = (float*)d.po;
    p.part_lse = (float*)d.plse;
  }
  void* args[] = {&p};
  const unsigned gx = (p.rows_total + cfg->bm - 1) / cfg->bm, gy = decode ? c.hkv : c.hq, gz = c.batch * c.splits;
  CK(cuLaunchKernel(fn, gx, gy, gz, cfg->w * 32, 1, 1, cfg->smem, 0, args, nullptr));
  if (c.splits > 1) {
    FaCombineParams cp{};
    cp.part_o = p.part_o;
    cp.part_lse = p.part_lse;
    cp.out = p.out;
    cp.lse = p.lse;
    cp.batch = c.batch;
    cp.seq_q = c.sq;
    cp.heads_q = c.hq;
    cp.head_dim = c.hd;
    cp.num_splits = c.splits;
    cp.q_batch_stride = p.q_batch_stride;
    cp.q_row_stride = p.q_row_stride;
    void* cargs[] = {&cp};
    CUfunction cf = combine;
    if (c.bf16) {
      err = "";
    }
    CK(cuLaunchKernel(cf, (unsigned)nl, 1, 1, 128, 1, 1, 0, 0, cargs, nullptr));
  }
  CUresult r = cuCtxSynchronize();
  if (r != CUDA_SUCCESS) {
    const char* n = "?";
    cuGetErrorName(r, &n);
    err = n;
    std::fprintf(stderr, "launch failed: %s (%s)\n", n, c.name.c_str());
    std::exit(3);  // a sticky error poisons the context: stop here
  }
  std::vector<uint16_t> oh(nq);
  out.resize(nq);
  lse.resize(nl);
  CK(cuMemcpyDtoH(oh.data(), d.out, nq * 2));
  CK(cuMemcpyDtoH(lse.data(), d.lse, nl * 4));
  for (size_t i = 0; i < nq; ++i) out[i] = c.bf16 ? bf2f(oh[i]) : h2f(oh[i]);
  d.free_all();
  return true;
}

static int suite(int argc, char** argv) {
  CUmodule cmb = load_module(argv[2]);
  CUfunction comb16, combbf;
  CK(cuModuleGetFunction(&comb16, cmb, "fa_combine_f16"));
  CK(cuModuleGetFunction(&combbf, cmb, "fa_combine_bf16"));
  struct Mod {
    std::string label, path;
    CUmodule m;
  };
  std::vector<Mod> mods;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    auto eq = a.find('=');
    Mod m{a.substr(0, eq), "", nullptr};
    m.path = m.label.find("turing") != std::string::npos ? "turing" : "volta";
    m.m = load_module(a.substr(eq + 1));
    mods.push_back(m);
  }
  std::vector<Case> base = {
      {"size1-none", 1, 1, 1, 1, 1, 0, 0, 0, 0, {}, 1, false},
      {"prefill17-none-gqa2", 2, 17, 17, 4, 2, 0, 0, 0, 0, {}, 1, false},
      {"prefill1000-causal-gqa2", 1, 1000, 1000, 2, 1, 0, 1, 0, 0, {}, 1, false},
      {"chunk200x333-window37/5-pad", 2, 200, 333, 3, 3, 0, 2, 37, 5, {333, 100}, 1, false},
      {"prefill64x130-causal-lk0", 3, 64, 130, 2, 1, 0, 1, 0, 0, {130, 0, 17}, 1, false},
      {"prefill1000x17-causal-emptyrows", 1, 1000, 17, 2, 2, 0, 1, 0, 0, {}, 1, false},
      {"decode1x1000-none-gqa4-pad", 2, 1, 1000, 8, 2, 0, 0, 0, 0, {1000, 1}, 1, false},
      {"decode1x3000-causal-mqa8-split4", 2, 1, 3000, 8, 1, 0, 1, 0, 0, {3000, 777}, 4, false},
      {"decode4x500-window64/0-gqa2-split3", 1, 4, 500, 4, 2, 0, 2, 64, 0, {}, 3, false},
      {"decode1-lk0-split2", 2, 1, 64, 4, 4, 0, 0, 0, 0, {0, 64}, 2, false},
      {"bf16-prefill129-causal-gqa2", 1, 129, 129, 2, 1, 0, 1, 0, 0, {}, 1, true},
      {"bf16-decode1x700-split2", 1, 1, 700, 4, 1, 0, 0, 0, 0, {}, 2, true},
  };
  const int hds[] = {64, 80, 96, 128, 256};
  std::mt19937_64 rng(20261124);
  std::normal_distribution<float> nd(0.f, 1.f);
  int fails = 0, runs = 0;
  std::printf("%-36s %4s %-12s %-5s %11s %11s %s\n", "case", "hd", "module", "dtype", "relL2(out)", "relL2(lse)", "verdict");
  for (int hd : hds)
    for (auto c : base) {
      c.hd = hd;
      const size_t nq = (size_t)c.batch * c.sq * c.hq * hd, nk = (size_t)c.batch * c.sk * c.hkv * hd;
      std::vector<uint16_t> qh(nq), kh(nk), vh(nk);
      std::vector<float> qf(nq), kf(nk), vf(nk);
      auto fill = [&](std::vector<uint16_t>& h, std::vector<float>& f, float amp) {
        for (size_t i = 0; i < h.size(); ++i) {
          const float x = nd(rng) * amp;
          h[i] = c.bf16 ? f2bf(x) : f2h(x);
          f[i] = c.bf16 ? bf2f(h[i]) : h2f(h[i]);
        }
      };
      fill(qh, qf, 1.f);
      fill(kh, kf, 1.f);
      fill(vh, vf, 1.f);
      Ref ref;
      reference(c, qf, kf, vf, ref);
      const double tol = c.bf16 ? 1e-2 : 2e-3;
      for (auto& m : mods) {
        std::vector<float> out, lse;
        std::string err;
        ++runs;
        if (!run_case(c, m.m, c.bf16 ? combbf : comb16, m.path.c_str(), qh, kh, vh, out, lse, err)) {
          std::printf("%-36s %4d %-12s %-5s %11s %11s FAIL (%s)\n", c.name.c_str(), hd, m.label.c_str(),
                      c.bf16 ? "bf16" : "f16", "-", "-", err.c_str());
          ++fails;
          continue;
        }
        double num = 0, den = 0;
        bool nan = false;
        for (size_t i = 0; i < nq; ++i) {
          if (!std::isfinite(out[i])) nan = true;
          num += (out[i] - ref.out[i]) * (out[i] - ref.out[i]);
          den += ref.out[i] * ref.out[i];
        }
        double lnum = 0, lden = 0;
        bool lbad = false;
        for (size_t i = 0; i < ref.lse.size(); ++i) {
          if (std::isinf(ref.lse[i])) {
            if (!(std::isinf(lse[i]) && lse[i] < 0)) lbad = true;
            continue;
          }
          if (!std::isfinite(lse[i])) lbad = true;
          lnum += (lse[i] - ref.lse[i]) * (lse[i] - ref.lse[i]);
          lden += ref.lse[i] * ref.lse[i];
        }
        const double e = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
        const double le = lden > 0 ? std::sqrt(lnum / lden) : std::sqrt(lnum);
        const bool ok = !nan && !lbad && e <= tol && le <= 1e-4;
        if (!ok) ++fails;
        std::printf("%-36s %4d %-12s %-5s %11.3e %11.3e %s%s%s\n", c.name.c_str(), hd, m.label.c_str(),
                    c.bf16 ? "bf16" : "f16", e, le, ok ? "ok" : "FAIL", nan ? " (non-finite out)" : "",
                    lbad ? " (bad lse/-inf)" : "");
      }
    }
  std::printf("SUMMARY runs=%d fails=%d\n", runs, fails);
  return fails ? 1 : 0;
}

// One prefill launch: B=1, H=8, seqQ=seqK=seq, no mask. For ncu (bank conflicts of the layouts).
static int profile(int argc, char** argv) {
  CUmodule m = load_module(argv[2]);
  const std::string prefix = argv[3];
  const int seq = std::atoi(argv[4]), hd = std::atoi(argv[5]);
  const Cfg* cfg = find_cfg(prefix.find("turing") != std::string::npos ? "turing" : "volta", "prefill", hd);
  CUfunction fn;
  CK(cuModuleGetFunction(&fn, m, cfg->symbol("f16")));
  CK(cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, cfg->smem));
  const int H = 8;
  const size_t n = (size_t)seq * H * hd;
  std::vector<uint16_t> h(n);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (auto& x : h) x = f2h(nd(rng));
  CUdeviceptr q, k, v, o, l;
  CK(cuMemAlloc(&q, n * 2));
  CK(cuMemAlloc(&k, n * 2));
  CK(cuMemAlloc(&v, n * 2));
  CK(cuMemAlloc(&o, n * 2));
  CK(cuMemAlloc(&l, (size_t)H * seq * 4));
  CK(cuMemcpyHtoD(q, h.data(), n * 2));
  CK(cuMemcpyHtoD(k, h.data(), n * 2));
  CK(cuMemcpyHtoD(v, h.data(), n * 2));
  FaFwdParams p{};
  p.q = (void*)q, p.k = (void*)k, p.v = (void*)v, p.out = (void*)o, p.lse = (float*)l;
  p.q_row_stride = p.k_row_stride = (int64_t)H * hd;
  p.q_batch_stride = p.k_batch_stride = (int64_t)seq * H * hd;
  p.batch = 1, p.seq_q = p.seq_k = seq, p.heads_q = p.heads_kv = H, p.group = 1, p.head_dim = hd;
  p.band_left = p.band_right = FA_BAND_INF;
  p.scale = 1.f / std::sqrt((float)hd), p.scale_log2 = p.scale * 1.4426950408889634f;
  p.rows_total = seq, p.num_splits = 1;
  void* args[] = {&p};
  CK(cuLaunchKernel(fn, (seq + cfg->bm - 1) / cfg->bm, H, 1, cfg->w * 32, 1, 1, cfg->smem, 0, args, nullptr));
  CK(cuCtxSynchronize());
  std::printf("profiled %s\n", cfg->symbol("f16"));
  return 0;
}

// Event timing (median of 20) of a few prefill shapes, for the record only: an H100 says nothing
// about a V100 or a T4.
static int timing(int argc, char** argv) {
  std::printf("%-14s %-40s %9s %9s\n", "module", "kernel (B=4,H=16,S=2048,no mask)", "ms", "TFLOPS");
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto eq = a.find('=');
    const std::string label = a.substr(0, eq);
    CUmodule m = load_module(a.substr(eq + 1));
    const char* path = label.find("turing") != std::string::npos ? "turing" : "volta";
    for (int hd : {64, 128}) {
      const Cfg* cfg = find_cfg(path, "prefill", hd);
      CUfunction fn;
      CK(cuModuleGetFunction(&fn, m, cfg->symbol("f16")));
      CK(cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, cfg->smem));
      const int B = 4, H = 16, S = 2048;
      const size_t n = (size_t)B * S * H * hd;
      std::vector<uint16_t> h(n);
      std::mt19937 rng(2);
      std::normal_distribution<float> nd;
      for (auto& x : h) x = f2h(nd(rng));
      CUdeviceptr q, k, v, o, l;
      CK(cuMemAlloc(&q, n * 2));
      CK(cuMemAlloc(&k, n * 2));
      CK(cuMemAlloc(&v, n * 2));
      CK(cuMemAlloc(&o, n * 2));
      CK(cuMemAlloc(&l, (size_t)B * H * S * 4));
      CK(cuMemcpyHtoD(q, h.data(), n * 2));
      CK(cuMemcpyHtoD(k, h.data(), n * 2));
      CK(cuMemcpyHtoD(v, h.data(), n * 2));
      FaFwdParams p{};
      p.q = (void*)q, p.k = (void*)k, p.v = (void*)v, p.out = (void*)o, p.lse = (float*)l;
      p.q_row_stride = p.k_row_stride = (int64_t)H * hd;
      p.q_batch_stride = p.k_batch_stride = (int64_t)S * H * hd;
      p.batch = B, p.seq_q = p.seq_k = S, p.heads_q = p.heads_kv = H, p.group = 1, p.head_dim = hd;
      p.band_left = p.band_right = FA_BAND_INF;
      p.scale = 1.f / std::sqrt((float)hd), p.scale_log2 = p.scale * 1.4426950408889634f;
      p.rows_total = S, p.num_splits = 1;
      void* args[] = {&p};
      CUevent e0, e1;
      CK(cuEventCreate(&e0, 0));
      CK(cuEventCreate(&e1, 0));
      std::vector<float> ms;
      for (int it = 0; it < 25; ++it) {
        CK(cuEventRecord(e0, 0));
        CK(cuLaunchKernel(fn, (S + cfg->bm - 1) / cfg->bm, H, B, cfg->w * 32, 1, 1, cfg->smem, 0, args, nullptr));
        CK(cuEventRecord(e1, 0));
        CK(cuEventSynchronize(e1));
        float t;
        CK(cuEventElapsedTime(&t, e0, e1));
        if (it >= 5) ms.push_back(t);
      }
      std::sort(ms.begin(), ms.end());
      const double med = ms[ms.size() / 2];
      const double flops = 4.0 * B * H * (double)S * S * hd;
      std::printf("%-14s %-40s %9.3f %9.1f\n", label.c_str(), cfg->symbol("f16"), med, flops / med / 1e9);
      for (CUdeviceptr x : {q, k, v, o, l}) cuMemFree(x);
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  FA_VOLTA_CONFIGS(ADD_VOLTA)
  FA_TURING_CONFIGS(ADD_TURING)
  if (argc < 3) {
    std::fprintf(stderr, "usage: check suite|profile|time ...\n");
    return 2;
  }
  CK(cuInit(0));
  CUdevice dev;
  CK(cuDeviceGet(&dev, 0));
  CUcontext ctx;
  CK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CK(cuCtxSetCurrent(ctx));
  char name[128];
  cuDeviceGetName(name, sizeof name, dev);
  int drv = 0;
  cuDriverGetVersion(&drv);
  std::printf("device: %s, driver API %d\n", name, drv);
  const std::string mode = argv[1];
  if (mode == "suite") return suite(argc, argv);
  if (mode == "profile") return profile(argc, argv);
  if (mode == "time") return timing(argc, argv);
  return 2;
}
