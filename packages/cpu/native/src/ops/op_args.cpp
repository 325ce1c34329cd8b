// The arguments of a model op, read from JavaScript. The TypeScript side validated the op against
// the contract (core's validateOp); the checks here make sure that no argument, however wrong,
// lets a worker touch memory outside the arrays it was given.
#include <algorithm>
#include <cmath>

#include "call_args.h"
#include "ops/op_job.h"
#include "ops/sample.h"

namespace fastattn {

namespace {

constexpr double kMaxIndex = 9007199254740991.0;  // 2^53 - 1

int64_t intArg(Napi::Env env, const Napi::Object& o, const std::string& field, const char* name, int64_t min = 0) {
  const Napi::Value v = o.Get(name);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : std::nan("");
  if (!(d >= double(min) && d <= kMaxIndex) || std::floor(d) != d) {
    throwInvalid(env, field + "." + name, "expected an integer >= " + std::to_string(min));
  }
  return int64_t(d);
}

double numberArg(Napi::Env env, const Napi::Object& o, const std::string& field, const char* name) {
  const Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throwInvalid(env, field + "." + name, "expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

Napi::Object objectArg(Napi::Env env, const Napi::Object& o, const char* name) {
  const Napi::Value v = o.Get(name);
  if (!v.IsObject()) throwInvalid(env, name, "expected an object");
  return v.As<Napi::Object>();
}

/** A typed array's data, its element count, and its element type. */
struct ArrayArg {
  void* data = nullptr;
  size_t length = 0;
  napi_typedarray_type type = napi_uint8_array;
};

ArrayArg arrayArg(Napi::Env env, const Napi::Value& v, const std::string& field) {
  ArrayArg a;
  if (!v.IsTypedArray() || napi_get_typedarray_info(env, v, &a.type, &a.length, &a.data, nullptr, nullptr) != napi_ok) {
    throwInvalid(env, field, "expected a typed array");
  }
  return a;
}

/** The storage of a float tensor: a Float32Array (f32) or a Uint16Array (f16, bf16). */
ArrayArg floatStorage(Napi::Env env, const Napi::Object& o, const std::string& field, DType& dtype) {
  const int64_t code = intArg(env, o, field, "dtype");
  if (code > 2) throwInvalid(env, field + ".dtype", "expected 0 (f32), 1 (f16) or 2 (bf16)");
  dtype = DType(code);
  const ArrayArg a = arrayArg(env, o.Get("data"), field + ".data");
  const napi_typedarray_type want = dtype == DType::F32 ? napi_float32_array : napi_uint16_array;
  if (a.type != want) throwInvalid(env, field + ".data", "does not match the dtype");
  return a;
}

/** Checks that element offset + last (the largest index a view reaches, inclusive) is inside. */
void checkReach(Napi::Env env, const std::string& field, const ArrayArg& a, int64_t offset, double last) {
  if (double(offset) + last >= double(a.length)) {
    throwInvalid(env, field, "reaches element " + std::to_string(int64_t(double(offset) + last)) + " of an array of " +
                                 std::to_string(a.length));
  }
}

void* elementPtr(const ArrayArg& a, DType dtype, int64_t offset) {
  return static_cast<char*>(a.data) + offset * (dtype == DType::F32 ? 4 : 2);
}

/** { data, dtype, offset, rows, cols, rowStride }: a matrix inside a float tensor's storage. */
Mat matArg(Napi::Env env, const Napi::Object& args, const char* name) {
  const Napi::Object o = objectArg(env, args, name);
  Mat m;
  const ArrayArg a = floatStorage(env, o, name, m.dtype);
  const int64_t offset = intArg(env, o, name, "offset");
  m.rows = intArg(env, o, name, "rows");
  m.cols = intArg(env, o, name, "cols");
  m.rowStride = intArg(env, o, name, "rowStride");
  if (m.rows > 0 && m.cols > 0) {
    checkReach(env, name, a, offset, double(m.rows - 1) * double(m.rowStride) + double(m.cols - 1));
  }
  m.data = elementPtr(a, m.dtype, offset);
  return m;
}

OutMat outArg(Napi::Env env, const Napi::Object& args, const char* name) {
  const Mat m = matArg(env, args, name);
  return OutMat{const_cast<void*>(m.data), m.dtype, m.rows, m.cols, m.rowStride};
}

/** { data, offset, rowStride }: rows x cols elements of a typed array of `type`. */
void* rowsArg(Napi::Env env, const Napi::Object& args, const char* name, napi_typedarray_type type, int64_t rows,
              int64_t cols, int64_t& rowStride) {
  const Napi::Object o = objectArg(env, args, name);
  const ArrayArg a = arrayArg(env, o.Get("data"), std::string(name) + ".data");
  if (a.type != type) throwInvalid(env, std::string(name) + ".data", "wrong typed array type");
  const int64_t offset = intArg(env, o, name, "offset");
  rowStride = intArg(env, o, name, "rowStride");
  if (rows > 0 && cols > 0) checkReach(env, name, a, offset, double(rows - 1) * double(rowStride) + double(cols - 1));
  return static_cast<char*>(a.data) + offset * 4;
}

void requireShape(Napi::Env env, const char* name, const Mat& m, int64_t rows, int64_t cols) {
  if (m.rows != rows || m.cols != cols) {
    throwInvalid(env, name, "expected " + std::to_string(rows) + " x " + std::to_string(cols) + ", got " +
                                std::to_string(m.rows) + " x " + std::to_string(m.cols));
  }
}
void requireShape(Napi::Env env, const char* name, const OutMat& m, int64_t rows, int64_t cols) {
  requireShape(env, name, Mat{m.data, m.dtype, m.rows, m.cols, m.rowStride}, rows, cols);
}

/** Rows per item: about four items per worker. */
int64_t perItem(int64_t rows, int threads) { return std::max<int64_t>(1, (rows + 4 * threads - 1) / (4 * threads)); }
int64_t itemsOf(int64_t rows, int64_t per) { return (rows + per - 1) / per; }

template <typename P>
OpRecipe recipeOf(int64_t items, P params, void (*item)(const P&, int64_t, Scratch&)) {
  return OpRecipe{items, [params, item](int64_t i, Scratch& s) { item(params, i, s); }};
}

RowOp rowOpOf(const std::string& kind) {
  if (kind == "rmsNorm") return RowOp::RmsNorm;
  if (kind == "add") return RowOp::Add;
  if (kind == "swiglu") return RowOp::Swiglu;
  if (kind == "gegluTanh") return RowOp::GegluTanh;
  if (kind == "gegluErf") return RowOp::GegluErf;
  if (kind == "embedding") return RowOp::Embedding;
  return RowOp::Copy;
}

}  // namespace

OpRecipe makeOpRecipe(Napi::Env env, const std::string& kind, const Napi::Object& args, const KernelTable& kernel,
                      int threads) {
  const OpKernels& ops = opKernelsFor(kernel);
  if (kind == "linear") {
    GemmParams p;
    p.x = matArg(env, args, "x");
    p.w = matArg(env, args, "weight");
    p.out = outArg(env, args, "out");
    requireShape(env, "weight", p.w, p.w.rows, p.x.cols);
    requireShape(env, "out", p.out, p.x.rows, p.w.rows);
    if (args.Has("bias") && !args.Get("bias").IsUndefined()) {
      p.bias = matArg(env, args, "bias");
      requireShape(env, "bias", p.bias, 1, p.w.rows);
    }
    if (p.x.cols == 0) throwInvalid(env, "x", "has no columns (the caller fills out with the bias)");
    const int64_t items = ops.planGemm(p, threads);
    return recipeOf(p.x.rows == 0 ? 0 : items, p, ops.gemmItem);
  }
  if (kind == "rmsNorm" || kind == "add" || kind == "swiglu" || kind == "gegluTanh" || kind == "gegluErf" ||
      kind == "copy" || kind == "embedding") {
    RowParams p;
    p.op = rowOpOf(kind);
    p.a = matArg(env, args, "a");
    p.out = outArg(env, args, "out");
    if (p.op == RowOp::Embedding) {
      requireShape(env, "a", p.a, p.a.rows, p.out.cols);
      p.tokens = typedField<const int32_t>(env, args, "tokens", napi_int32_array, size_t(p.out.rows));
    } else {
      requireShape(env, "a", p.a, p.out.rows, p.out.cols);
    }
    if (p.op == RowOp::RmsNorm) {
      p.b = matArg(env, args, "b");
      requireShape(env, "b", p.b, 1, p.out.cols);
      p.eps = float(numberArg(env, args, "args", "eps"));
    } else if (p.op != RowOp::Copy && p.op != RowOp::Embedding) {
      p.b = matArg(env, args, "b");
      requireShape(env, "b", p.b, p.out.rows, p.out.cols);
    }
    p.rowsPerItem = perItem(p.out.rows, threads);
    return recipeOf(p.out.cols == 0 ? 0 : itemsOf(p.out.rows, p.rowsPerItem), p, ops.rowItem);
  }
  if (kind == "rope") {
    RopeParams p;
    p.tokens = intArg(env, args, "rope", "tokens");
    p.heads = intArg(env, args, "rope", "heads");
    p.headDim = intArg(env, args, "rope", "headDim", 1);
    p.rotary = intArg(env, args, "rope", "rotaryDim");
    if (p.rotary % 2 != 0 || p.rotary > p.headDim) throwInvalid(env, "rope.rotaryDim", "expected an even count <= headDim");
    p.positions = typedField<const int32_t>(env, args, "positions", napi_int32_array, size_t(p.tokens));
    const ArrayArg inv = arrayArg(env, args.Get("invFreq"), "invFreq");
    if (inv.type != napi_float64_array || int64_t(inv.length) != p.rotary / 2) {
      throwInvalid(env, "invFreq", "expected a Float64Array of rotaryDim / 2 elements");
    }
    p.invFreq = static_cast<const double*>(inv.data);
    p.attentionFactor = numberArg(env, args, "rope", "attentionScaling");
    for (const char* name : {"x", "out"}) {
      const Napi::Object o = objectArg(env, args, name);
      DType dtype;
      const ArrayArg a = floatStorage(env, o, name, dtype);
      const int64_t offset = intArg(env, o, name, "offset");
      const int64_t ts = intArg(env, o, name, "tokenStride");
      const int64_t hs = intArg(env, o, name, "headStride");
      if (p.tokens > 0 && p.heads > 0) {
        checkReach(env, name, a, offset,
                   double(p.tokens - 1) * double(ts) + double(p.heads - 1) * double(hs) + double(p.headDim - 1));
      }
      void* data = elementPtr(a, dtype, offset);
      if (name[0] == 'x') {
        p.x = Mat{data, dtype, 0, p.headDim, 0};
        p.xTokenStride = ts;
        p.xHeadStride = hs;
      } else {
        p.out = OutMat{data, dtype, 0, p.headDim, 0};
        p.outTokenStride = ts;
        p.outHeadStride = hs;
      }
    }
    p.tokensPerItem = perItem(p.tokens, threads);
    return recipeOf(p.heads == 0 ? 0 : itemsOf(p.tokens, p.tokensPerItem), p, ops.ropeItem);
  }
  // ropeAppend: a rope op's fused append (its rotated keys and v), which names its own field.
  if (kind == "kvAppend" || kind == "ropeAppend") {
    KvAppendParams p;
    if (kind == "ropeAppend") p.slotsField = "rope.append.slots";
    p.k = matArg(env, args, "k");
    p.v = matArg(env, args, "v");
    p.cacheK = outArg(env, args, "cacheK");
    p.cacheV = outArg(env, args, "cacheV");
    requireShape(env, "v", p.v, p.k.rows, p.k.cols);
    requireShape(env, "cacheK", p.cacheK, p.cacheK.rows, p.k.cols);
    requireShape(env, "cacheV", p.cacheV, p.cacheK.rows, p.k.cols);
    p.slots = typedField<const int32_t>(env, args, "slots", napi_int32_array, size_t(p.k.rows));
    p.tokensPerItem = perItem(p.k.rows, threads);
    return recipeOf(p.k.cols == 0 ? 0 : itemsOf(p.k.rows, p.tokensPerItem), p, ops.kvAppendItem);
  }
  if (kind == "lseMerge") {
    LseMergeParams p;
    p.parts = intArg(env, args, "lseMerge", "parts", 1);
    p.rows = intArg(env, args, "lseMerge", "rows");
    p.d = intArg(env, args, "lseMerge", "d");
    p.out = outArg(env, args, "out");
    requireShape(env, "out", p.out, p.rows, p.d);
    for (const char* name : {"outs", "lses"}) {
      const Napi::Object o = objectArg(env, args, name);
      const ArrayArg a = arrayArg(env, o.Get("data"), std::string(name) + ".data");
      if (a.type != napi_float32_array) throwInvalid(env, std::string(name) + ".data", "expected a Float32Array");
      const int64_t offset = intArg(env, o, name, "offset");
      const int64_t ps = intArg(env, o, name, "partStride");
      const int64_t rs = intArg(env, o, name, "rowStride");
      const double cols = name[0] == 'o' ? double(p.d) : 1.0;
      if (p.rows > 0 && cols > 0) {
        checkReach(env, name, a, offset, double(p.parts - 1) * double(ps) + double(p.rows - 1) * double(rs) + cols - 1);
      }
      const float* data = static_cast<const float*>(a.data) + offset;
      if (name[0] == 'o') {
        p.outs = data;
        p.outsPartStride = ps;
        p.outsRowStride = rs;
      } else {
        p.lses = data;
        p.lsesPartStride = ps;
        p.lsesRowStride = rs;
      }
    }
    if (args.Has("lse") && !args.Get("lse").IsUndefined()) {
      const Napi::Object o = objectArg(env, args, "lse");
      const ArrayArg a = arrayArg(env, o.Get("data"), "lse.data");
      if (a.type != napi_float32_array) throwInvalid(env, "lse.data", "expected a Float32Array");
      const int64_t offset = intArg(env, o, "lse", "offset");
      p.lseStride = intArg(env, o, "lse", "stride");
      if (p.rows > 0) checkReach(env, "lse", a, offset, double(p.rows - 1) * double(p.lseStride));
      p.lse = static_cast<float*>(a.data) + offset;
    }
    p.rowsPerItem = perItem(p.rows, threads);
    return recipeOf(itemsOf(p.rows, p.rowsPerItem), p, ops.lseMergeItem);
  }
  if (kind == "sample") {
    SampleParams p;
    p.rows = intArg(env, args, "sample", "rows");
    p.vocab = intArg(env, args, "sample", "vocab", 1);
    p.logits = static_cast<const float*>(rowsArg(env, args, "logits", napi_float32_array, p.rows, p.vocab, p.logitsRowStride));
    p.temperature = typedField<float>(env, args, "temperature", napi_float32_array, size_t(p.rows));
    p.topK = typedField<const int32_t>(env, args, "topK", napi_int32_array, size_t(p.rows));
    p.topP = typedField<float>(env, args, "topP", napi_float32_array, size_t(p.rows));
    p.minP = typedField<float>(env, args, "minP", napi_float32_array, size_t(p.rows));
    p.repetitionPenalty = typedField<float>(env, args, "repetitionPenalty", napi_float32_array, size_t(p.rows));
    p.presencePenalty = typedField<float>(env, args, "presencePenalty", napi_float32_array, size_t(p.rows));
    p.frequencyPenalty = typedField<float>(env, args, "frequencyPenalty", napi_float32_array, size_t(p.rows));
    p.seed = typedField<const int32_t>(env, args, "seed", napi_int32_array, size_t(p.rows));
    p.counters = typedField<const int32_t>(env, args, "counters", napi_int32_array, size_t(p.rows));
    if (args.Has("counts") && !args.Get("counts").IsUndefined()) {
      p.counts = static_cast<const int32_t*>(rowsArg(env, args, "counts", napi_int32_array, p.rows, p.vocab, p.countsRowStride));
    }
    p.tokens = typedField<int32_t>(env, args, "tokens", napi_int32_array, size_t(p.rows));
    if (args.Has("logprobs") && !args.Get("logprobs").IsUndefined()) p.logprobs = typedField<float>(env, args, "logprobs", napi_float32_array, size_t(p.rows));
    p.rowsPerItem = 1;
    return recipeOf<SampleParams>(p.rows, p, &sampleRows);
  }
  throwInvalid(env, "op", "no native op '" + kind + "'");
}

std::shared_ptr<OpJob> makeOpJob(Napi::Env env, const std::string& kind, const Napi::Object& args,
                                 const KernelTable& kernel, int threads, std::function<void()> done) {
  OpRecipe recipe = makeOpRecipe(env, kind, args, kernel, threads);
  return jobFrom(recipe, std::move(done));
}

}  // namespace fastattn
