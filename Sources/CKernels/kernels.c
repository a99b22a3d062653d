// Conversion kernels with run-time dispatch. See include/CKernels.h.
#include "CKernels.h"
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define CKPT_X86 1
#include <immintrin.h>
#endif

// MARK: - Portable scalar conversions

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float ckpt_f16_to_f32_scalar(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) {                       // inf / NaN: payload shifted into place
        return bits_f32(sign | 0x7f800000u | (man << 13));
    }
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);  // ±0
        // subnormal: value = man · 2^-24, exact in f32
        float v = (float)man * 0x1p-24f;
        return bits_f32(sign | f32_bits(v));
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t ckpt_f32_to_f16_scalar(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) {                   // NaN: quiet, keep top payload bits (as vcvtps2ph does)
        return sign | 0x7e00 | (uint16_t)((a >> 13) & 0x3ff);
    }
    if (a >= 0x477ff000u) {                  // ≥ 65520 rounds to inf (65504 is the largest finite)
        return sign | 0x7c00;
    }
    if (a < 0x38800000u) {                   // below 2^-14: subnormal or zero
        // Add 0.5 (as a float) so the FPU rounds the mantissa to nearest-even at the 2^-24 position.
        float r = bits_f32(a) + 0.5f;
        return sign | (uint16_t)(f32_bits(r) - 0x3f000000u);
    }
    uint32_t mant_odd = (a >> 13) & 1;
    a += 0xc8000fffu + mant_odd;             // rebias exponent (-112 << 23) and round to nearest even
    return sign | (uint16_t)(a >> 13);
}

float ckpt_bf16_to_f32_scalar(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t ckpt_f32_to_bf16_scalar(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {   // NaN: keep sign and top payload, force quiet bit
        return (uint16_t)((u >> 16) | 0x0040);
    }
    u += 0x7fffu + ((u >> 16) & 1);          // round to nearest even
    return (uint16_t)(u >> 16);
}

static void f16_to_f32_portable(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = ckpt_f16_to_f32_scalar(src[i]);
}
static void f32_to_f16_portable(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = ckpt_f32_to_f16_scalar(src[i]);
}
static void bf16_to_f32_portable(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = ckpt_bf16_to_f32_scalar(src[i]);
}
static void f32_to_bf16_portable(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = ckpt_f32_to_bf16_scalar(src[i]);
}

static void add_f16_portable(const uint16_t *a, const uint16_t *b, uint16_t *out, size_t n, int sub) {
    for (size_t i = 0; i < n; i++) {
        float x = ckpt_f16_to_f32_scalar(a[i]), y = ckpt_f16_to_f32_scalar(b[i]);
        out[i] = ckpt_f32_to_f16_scalar(sub ? x - y : x + y);
    }
}
static void add_f32_portable(const float *a, const float *b, float *out, size_t n, int sub) {
    if (sub) { for (size_t i = 0; i < n; i++) out[i] = a[i] - b[i]; }
    else { for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i]; }
}

// MARK: - AVX2 + F16C variants

#ifdef CKPT_X86
#define CKPT_AVX2 __attribute__((target("avx2,f16c,fma")))

CKPT_AVX2 static void f16_to_f32_avx2(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 8));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(a));
        _mm256_storeu_ps(dst + i + 8, _mm256_cvtph_ps(b));
    }
    for (; i < n; i++) dst[i] = ckpt_f16_to_f32_scalar(src[i]);
}

CKPT_AVX2 static void f32_to_f16_avx2(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_loadu_ps(src + i);
        __m256 b = _mm256_loadu_ps(src + i + 8);
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT));
        _mm_storeu_si128((__m128i *)(dst + i + 8), _mm256_cvtps_ph(b, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) dst[i] = ckpt_f32_to_f16_scalar(src[i]);
}

CKPT_AVX2 static void bf16_to_f32_avx2(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(a), 16);
        _mm256_storeu_si256((__m256i *)(dst + i), w);
    }
    for (; i < n; i++) dst[i] = ckpt_bf16_to_f32_scalar(src[i]);
}

CKPT_AVX2 static void f32_to_bf16_avx2(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
    const __m256i inf = _mm256_set1_epi32(0x7f800000);
    const __m256i bias = _mm256_set1_epi32(0x7fff);
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i quiet = _mm256_set1_epi32(0x00400000);
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int k = 0; k < 2; k++) {
            __m256i u = _mm256_loadu_si256((const __m256i *)(src + i + 8 * k));
            __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
            __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
            __m256i rounded = _mm256_add_epi32(u, _mm256_add_epi32(bias, lsb));
            __m256i nan = _mm256_or_si256(u, quiet);
            r[k] = _mm256_srli_epi32(_mm256_blendv_epi8(rounded, nan, is_nan), 16);
        }
        // pack 2×8 u32 (each < 65536) into 16 u16; packus works per 128-bit lane, so fix the lane order after.
        __m256i packed = _mm256_packus_epi32(r[0], r[1]);
        packed = _mm256_permute4x64_epi64(packed, 0xd8);
        _mm256_storeu_si256((__m256i *)(dst + i), packed);
    }
    for (; i < n; i++) dst[i] = ckpt_f32_to_bf16_scalar(src[i]);
}

CKPT_AVX2 static void add_f16_avx2(const uint16_t *a, const uint16_t *b, uint16_t *out, size_t n, int sub) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256 y = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i)));
        __m256 r = sub ? _mm256_sub_ps(x, y) : _mm256_add_ps(x, y);
        _mm_storeu_si128((__m128i *)(out + i), _mm256_cvtps_ph(r, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) {
        float x = ckpt_f16_to_f32_scalar(a[i]), y = ckpt_f16_to_f32_scalar(b[i]);
        out[i] = ckpt_f32_to_f16_scalar(sub ? x - y : x + y);
    }
}

CKPT_AVX2 static void add_f32_avx2(const float *a, const float *b, float *out, size_t n, int sub) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(a + i), y = _mm256_loadu_ps(b + i);
        _mm256_storeu_ps(out + i, sub ? _mm256_sub_ps(x, y) : _mm256_add_ps(x, y));
    }
    for (; i < n; i++) out[i] = sub ? a[i] - b[i] : a[i] + b[i];
}
#endif

// MARK: - Dispatch

static int use_avx2(void) {
#ifdef CKPT_X86
    static int cached = -1;   // read and written atomically: kernels run on several threads
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
#else
    return 0;
#endif
}

int ckpt_use_avx2(void) { return use_avx2(); }

// The portable variants, callable directly (tests compare them with the dispatched ones; no global switch).
void ckpt_portable_f16_to_f32(const uint16_t *src, float *dst, size_t n) { f16_to_f32_portable(src, dst, n); }
void ckpt_portable_f32_to_f16(const float *src, uint16_t *dst, size_t n) { f32_to_f16_portable(src, dst, n); }
void ckpt_portable_bf16_to_f32(const uint16_t *src, float *dst, size_t n) { bf16_to_f32_portable(src, dst, n); }
void ckpt_portable_f32_to_bf16(const float *src, uint16_t *dst, size_t n) { f32_to_bf16_portable(src, dst, n); }
void ckpt_portable_add_f16(const uint16_t *a, const uint16_t *b, uint16_t *out, size_t n, int subtract) { add_f16_portable(a, b, out, n, subtract); }
void ckpt_portable_add_f32(const float *a, const float *b, float *out, size_t n, int subtract) { add_f32_portable(a, b, out, n, subtract); }

const char *ckpt_kernels_variant(void) { return use_avx2() ? "avx2+f16c" : "portable"; }

void ckpt_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
#ifdef CKPT_X86
    if (use_avx2()) { f16_to_f32_avx2(src, dst, n); return; }
#endif
    f16_to_f32_portable(src, dst, n);
}
void ckpt_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
#ifdef CKPT_X86
    if (use_avx2()) { f32_to_f16_avx2(src, dst, n); return; }
#endif
    f32_to_f16_portable(src, dst, n);
}
void ckpt_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
#ifdef CKPT_X86
    if (use_avx2()) { bf16_to_f32_avx2(src, dst, n); return; }
#endif
    bf16_to_f32_portable(src, dst, n);
}
void ckpt_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
#ifdef CKPT_X86
    if (use_avx2()) { f32_to_bf16_avx2(src, dst, n); return; }
#endif
    f32_to_bf16_portable(src, dst, n);
}

void ckpt_add_f16(const uint16_t *a, const uint16_t *b, uint16_t *out, size_t n, int subtract) {
#ifdef CKPT_X86
    if (use_avx2()) { add_f16_avx2(a, b, out, n, subtract); return; }
#endif
    add_f16_portable(a, b, out, n, subtract);
}
void ckpt_add_f32(const float *a, const float *b, float *out, size_t n, int subtract) {
#ifdef CKPT_X86
    if (use_avx2()) { add_f32_avx2(a, b, out, n, subtract); return; }
#endif
    add_f32_portable(a, b, out, n, subtract);
}
