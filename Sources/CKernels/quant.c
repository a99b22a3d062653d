// Quantization kernels: GGML Q8_0 (gguf-py / ggml reference rounding) and compressed-tensors int8
// (pack-quantized). See include/CKernels.h and ../../shared/reference/quantization.md.
#include "CKernels.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define CKPT_X86 1
#include <immintrin.h>
#define CKPT_AVX2 __attribute__((target("avx2,f16c,fma")))
#endif

// MARK: - Q8_0

// Per block of 32 f32 values: amax, d = amax/127 (f32), id = d ? 1/d : 0, q = roundf(x*id) (half away from zero),
// stored d = fp16(d) (RNE). Dequantized value: fp16(d) * q in f32. stats: [sum w², sum err², max |err|].
static inline void q8_0_block_scalar(const float *x, uint8_t *out, double *stats) {
    float amax = 0;
    for (int j = 0; j < 32; j++) { float a = fabsf(x[j]); if (a > amax) amax = a; }
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint16_t dh = ckpt_f32_to_f16_scalar(d);
    memcpy(out, &dh, 2);
    float dq = ckpt_f16_to_f32_scalar(dh);
    for (int j = 0; j < 32; j++) {
        float q = roundf(x[j] * id);
        out[2 + j] = (uint8_t)(int8_t)q;
        if (stats) {
            double e = (double)(dq * q) - (double)x[j];
            stats[0] += (double)x[j] * (double)x[j];
            stats[1] += e * e;
            if (fabs(e) > stats[2]) stats[2] = fabs(e);
        }
    }
}

static void q8_0_portable(const float *src, uint8_t *dst, size_t nblocks, double *stats) {
    for (size_t b = 0; b < nblocks; b++) q8_0_block_scalar(src + 32 * b, dst + 34 * b, stats);
}

#ifdef CKPT_X86
// Half away from zero, exactly as C roundf: t = trunc(v); v - t is exact; |v - t| >= 0.5 moves t one step away.
CKPT_AVX2 static inline __m256 round_half_away(__m256 v) {
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_sub_ps(v, t);
    __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 big = _mm256_cmp_ps(_mm256_and_ps(frac, absmask), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 one = _mm256_or_ps(_mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000))), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(big, one));
}

CKPT_AVX2 static void q8_0_avx2(const float *src, uint8_t *dst, size_t nblocks, double *stats) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    // Statistics: Σx² and Σerr² in f64 lanes, max |err| in f32 lanes (err = fp16(d)·q − x; the product is exact).
    __m256d sw = _mm256_setzero_pd(), se = _mm256_setzero_pd();
    __m256 me = _mm256_setzero_ps();
    for (size_t b = 0; b < nblocks; b++) {
        const float *x = src + 32 * b;
        uint8_t *out = dst + 34 * b;
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                                 _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
        float amax = _mm_cvtss_f32(h);
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(d), _MM_FROUND_TO_NEAREST_INT), 0);
        memcpy(out, &dh, 2);
        __m256 vid = _mm256_set1_ps(id);
        __m256 q0 = round_half_away(_mm256_mul_ps(v0, vid)), q1 = round_half_away(_mm256_mul_ps(v1, vid));
        __m256 q2 = round_half_away(_mm256_mul_ps(v2, vid)), q3 = round_half_away(_mm256_mul_ps(v3, vid));
        if (stats) {
            __m256 dq = _mm256_set1_ps(ckpt_f16_to_f32_scalar(dh));
            __m256 xs[4] = {v0, v1, v2, v3}, qs[4] = {q0, q1, q2, q3};
            for (int k = 0; k < 4; k++) {
                __m256 e = _mm256_sub_ps(_mm256_mul_ps(qs[k], dq), xs[k]);
                me = _mm256_max_ps(me, _mm256_and_ps(e, absmask));
                __m256d elo = _mm256_cvtps_pd(_mm256_castps256_ps128(e)), ehi = _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1));
                __m256d xlo = _mm256_cvtps_pd(_mm256_castps256_ps128(xs[k])), xhi = _mm256_cvtps_pd(_mm256_extractf128_ps(xs[k], 1));
                se = _mm256_fmadd_pd(elo, elo, _mm256_fmadd_pd(ehi, ehi, se));
                sw = _mm256_fmadd_pd(xlo, xlo, _mm256_fmadd_pd(xhi, xhi, sw));
            }
        }
        __m256i i0 = _mm256_cvtps_epi32(q0), i1 = _mm256_cvtps_epi32(q1);
        __m256i i2 = _mm256_cvtps_epi32(q2), i3 = _mm256_cvtps_epi32(q3);
        // pack 32 int32 → 32 int8 (values are within [-127, 127]); fix the lane interleaving of the packs.
        __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(out + 2), p);
    }
    if (stats) {
        double a[4], b[4];
        float m[8];
        _mm256_storeu_pd(a, sw);
        _mm256_storeu_pd(b, se);
        _mm256_storeu_ps(m, me);
        stats[0] += a[0] + a[1] + a[2] + a[3];
        stats[1] += b[0] + b[1] + b[2] + b[3];
        for (int k = 0; k < 8; k++) if (m[k] > stats[2]) stats[2] = m[k];
    }
}
#endif

// MARK: - compressed-tensors int8 (pack-quantized)

// Rounding to the weight dtype (1 = f16, 2 = bf16), computed through f32 (exact for these single operations).
static inline float rnd(float v, int dtype) {
    return dtype == 2 ? ckpt_bf16_to_f32_scalar(ckpt_f32_to_bf16_scalar(v)) : ckpt_f16_to_f32_scalar(ckpt_f32_to_f16_scalar(v));
}
static inline uint16_t bits(float v, int dtype) { return dtype == 2 ? ckpt_f32_to_bf16_scalar(v) : ckpt_f32_to_f16_scalar(v); }

// scale = rnd(absmax / 127.5); a zero scale becomes the dtype's eps (f16 2^-10, bf16 2^-7).
static inline float ct_scale(const float *w, size_t n, int dtype) {
    float amax = 0;
    for (size_t j = 0; j < n; j++) { float a = fabsf(w[j]); if (a > amax) amax = a; }
    float s = rnd(amax / 127.5f, dtype);
    if (s == 0.0f) s = dtype == 2 ? 0.0078125f : 0.0009765625f;
    return s;
}

void ckpt_ct_scales(const float *src, size_t rows, size_t cols, size_t group, int dtype, uint16_t *scales) {
    size_t groups = cols / group;
    for (size_t r = 0; r < rows; r++)
        for (size_t g = 0; g < groups; g++)
            scales[r * groups + g] = bits(ct_scale(src + r * cols + g * group, group, dtype), dtype);
}

// q = round-half-even(clamp(rnd(w / scale), -128, 127)); packed byte = q + 128; each row padded with 0x00 bytes to a
// multiple of 4. Dequantized value: rnd(q * scale). stats: [sum w², sum err², max |err|].
#ifdef CKPT_X86
// The same arithmetic 8 lanes at a time for fp16 weights: division in f32 then vcvtps2ph/vcvtph2ps for the
// rounding to fp16 (RNE, exactly the scalar rnd), clamp, round half to even, + 128.
CKPT_AVX2 static void ct_pack_f16_avx2(const float *w, size_t n, float s, uint8_t *out, double *stats) {
    size_t j = 0;
    __m256d sw = _mm256_setzero_pd(), se = _mm256_setzero_pd(), me = _mm256_setzero_pd();
    const __m256 vs = _mm256_set1_ps(s), lo = _mm256_set1_ps(-128.0f), hi = _mm256_set1_ps(127.0f);
    for (; j + 8 <= n; j += 8) {
        __m256 x = _mm256_loadu_ps(w + j);
        __m256 v = _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_div_ps(x, vs), _MM_FROUND_TO_NEAREST_INT));
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
        __m256 q = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i qi = _mm256_add_epi32(_mm256_cvtps_epi32(q), _mm256_set1_epi32(128));
        int32_t tmp[8];
        _mm256_storeu_si256((__m256i *)tmp, qi);
        for (int k = 0; k < 8; k++) out[j + k] = (uint8_t)tmp[k];
        if (stats) {  // err = rnd(q·s) − w, exact in f64 lanes
            __m256 dq = _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(q, vs), _MM_FROUND_TO_NEAREST_INT));
            __m256d dlo = _mm256_cvtps_pd(_mm256_castps256_ps128(dq)), dhi = _mm256_cvtps_pd(_mm256_extractf128_ps(dq, 1));
            __m256d xlo = _mm256_cvtps_pd(_mm256_castps256_ps128(x)), xhi = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
            __m256d elo = _mm256_sub_pd(dlo, xlo), ehi = _mm256_sub_pd(dhi, xhi);
            sw = _mm256_fmadd_pd(xlo, xlo, _mm256_fmadd_pd(xhi, xhi, sw));
            se = _mm256_fmadd_pd(elo, elo, _mm256_fmadd_pd(ehi, ehi, se));
            const __m256d absd = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
            me = _mm256_max_pd(me, _mm256_max_pd(_mm256_and_pd(elo, absd), _mm256_and_pd(ehi, absd)));
        }
    }
    if (stats) {
        double a[4], b[4], m[4];
        _mm256_storeu_pd(a, sw);
        _mm256_storeu_pd(b, se);
        _mm256_storeu_pd(m, me);
        stats[0] += a[0] + a[1] + a[2] + a[3];
        stats[1] += b[0] + b[1] + b[2] + b[3];
        for (int k = 0; k < 4; k++) if (m[k] > stats[2]) stats[2] = m[k];
    }
    for (; j < n; j++) {
        float v = rnd(w[j] / s, 1);
        if (v < -128.0f) v = -128.0f;
        if (v > 127.0f) v = 127.0f;
        float q = rintf(v);
        out[j] = (uint8_t)((int)q + 128);
        if (stats) {
            double e = (double)rnd(q * s, 1) - (double)w[j];
            stats[0] += (double)w[j] * (double)w[j];
            stats[1] += e * e;
            if (fabs(e) > stats[2]) stats[2] = fabs(e);
        }
    }
}
#endif

void ckpt_ct_pack(const float *src, size_t rows, size_t cols, size_t group, int dtype, uint8_t *packed, double *stats) {
#ifdef CKPT_X86
    extern int ckpt_use_avx2(void);
    if (dtype == 1 && ckpt_use_avx2()) {
        size_t stride = (cols + 3) / 4 * 4;
        for (size_t r = 0; r < rows; r++) {
            const float *row = src + r * cols;
            uint8_t *out = packed + r * stride;
            for (size_t g = 0; g < cols / group; g++) {
                const float *w = row + g * group;
                ct_pack_f16_avx2(w, group, ct_scale(w, group, dtype), out + g * group, stats);
            }
            for (size_t j = cols; j < stride; j++) out[j] = 0;
        }
        return;
    }
#endif
    ckpt_portable_ct_pack(src, rows, cols, group, dtype, packed, stats);
}

void ckpt_portable_ct_pack(const float *src, size_t rows, size_t cols, size_t group, int dtype, uint8_t *packed, double *stats) {
    size_t stride = (cols + 3) / 4 * 4;
    for (size_t r = 0; r < rows; r++) {
        const float *row = src + r * cols;
        uint8_t *out = packed + r * stride;
        for (size_t g = 0; g < cols / group; g++) {
            const float *w = row + g * group;
            float s = ct_scale(w, group, dtype);
            for (size_t j = 0; j < group; j++) {
                float v = rnd(w[j] / s, dtype);
                if (v < -128.0f) v = -128.0f;
                if (v > 127.0f) v = 127.0f;
                float q = rintf(v);  // default rounding mode: half to even
                out[g * group + j] = (uint8_t)((int)q + 128);
                if (stats) {
                    double e = (double)rnd(q * s, dtype) - (double)w[j];
                    stats[0] += (double)w[j] * (double)w[j];
                    stats[1] += e * e;
                    if (fabs(e) > stats[2]) stats[2] = fabs(e);
                }
            }
        }
        for (size_t j = cols; j < stride; j++) out[j] = 0;
    }
}

// Pieces of a group, for rows longer than the engine's buffers: the group's scale from its |w| maximum (taken over
// all its pieces first), then each piece packed with that scale — the same bits as ckpt_ct_pack on the whole group.
float ckpt_ct_absmax(const float *src, size_t n) {
    float amax = 0;
    for (size_t j = 0; j < n; j++) { float a = fabsf(src[j]); if (a > amax) amax = a; }
    return amax;
}

uint16_t ckpt_ct_scale_bits(float absmax, int dtype) {
    float s = rnd(absmax / 127.5f, dtype);
    if (s == 0.0f) s = dtype == 2 ? 0.0078125f : 0.0009765625f;
    return bits(s, dtype);
}

void ckpt_ct_pack_scaled(const float *w, size_t n, uint16_t scale_bits, int dtype, uint8_t *out, double *stats) {
    float s = dtype == 2 ? ckpt_bf16_to_f32_scalar(scale_bits) : ckpt_f16_to_f32_scalar(scale_bits);
#ifdef CKPT_X86
    extern int ckpt_use_avx2(void);
    if (dtype == 1 && ckpt_use_avx2()) { ct_pack_f16_avx2(w, n, s, out, stats); return; }
#endif
    for (size_t j = 0; j < n; j++) {
        float v = rnd(w[j] / s, dtype);
        if (v < -128.0f) v = -128.0f;
        if (v > 127.0f) v = 127.0f;
        float q = rintf(v);
        out[j] = (uint8_t)((int)q + 128);
        if (stats) {
            double e = (double)rnd(q * s, dtype) - (double)w[j];
            stats[0] += (double)w[j] * (double)w[j];
            stats[1] += e * e;
            if (fabs(e) > stats[2]) stats[2] = fabs(e);
        }
    }
}

void ckpt_portable_quantize_q8_0(const float *src, uint8_t *dst, size_t nblocks, double *stats) {
    q8_0_portable(src, dst, nblocks, stats);
}

void ckpt_quantize_q8_0(const float *src, uint8_t *dst, size_t nblocks, double *stats) {
#ifdef CKPT_X86
    extern int ckpt_use_avx2(void);
    if (ckpt_use_avx2()) { q8_0_avx2(src, dst, nblocks, stats); return; }
#endif
    q8_0_portable(src, dst, nblocks, stats);
}
