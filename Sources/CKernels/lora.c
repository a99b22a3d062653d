// LoRA merge kernels: peft 0.21.2's merge_and_unload() arithmetic, bit for bit, one block of output rows at a time.
// See include/CKernels.h (ckpt_lora_*) and Sources/CkptKit/LoRA/LoRAMerge.swift for what each step reproduces.
//
// Every rounding matters here, so the compiler must not fuse a multiply and an add on its own: contraction is off
// for this file, and every fused multiply-add below is written as fmaf / _mm256_fmadd_ps on purpose.
#include "CKernels.h"
#include <math.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define CKPT_LORA_X86 1
#include <immintrin.h>
#endif

// MARK: - MKL's k blocks

// Length of the k block starting at k0 (lora.md §3.1, measured): r ≤ 192 one chain; 192 < r ≤ 384 two halves of
// ⌊r/2⌋ (odd r: a third block of 1); r > 384 blocks of 192 and the remainder. `mkl` = 0: one chain whatever r.
static inline size_t block_len(size_t r, size_t k0, int mkl) {
    if (!mkl || r <= 192) return r - k0;
    if (r <= 384) {
        size_t h = r / 2;
        return k0 < 2 * h ? h : r - k0;
    }
    size_t rest = r - k0;
    return rest < 192 ? rest : 192;
}

// MARK: - Portable

// The resident matrix is packed in panels of 8 columns: element (k, j) of the r × cols matrix sits at
// packed[(j / 8)·r·8 + k·8 + j % 8], the last panel zero-padded. The AVX2 loop then reads it contiguously.
static inline size_t panels(size_t cols) { return (cols + 7) / 8; }

size_t ckpt_lora_packed_floats(size_t r, size_t cols) { return r * panels(cols) * 8; }

void ckpt_lora_pack_row(const float *row, size_t k, size_t r, size_t cols, float *packed) {
    for (size_t j = 0; j < cols; j++) packed[(j / 8) * r * 8 + k * 8 + (j % 8)] = row[j];
    for (size_t j = cols; j < panels(cols) * 8; j++) packed[(j / 8) * r * 8 + k * 8 + (j % 8)] = 0.0f;
}

// p[i·cols + j] = Σ_k f[i·r + k] · m(k, j) (m packed): per element a fused chain from +0 over each block, k
// ascending, block sums added left to right.
static void product_portable(const float *f, size_t rows, const float *m, size_t r, size_t cols, float *p, int mkl) {
    for (size_t i = 0; i < rows; i++) {
        const float *fi = f + i * r;
        float *pi = p + i * cols;
        for (size_t j = 0; j < cols; j++) {
            const float *mj = m + (j / 8) * r * 8 + (j % 8);
            float tot = 0.0f;
            size_t k0 = 0;
            int first = 1;
            while (k0 < r) {
                size_t len = block_len(r, k0, mkl);
                float acc = 0.0f;
                for (size_t k = k0; k < k0 + len; k++) acc = fmaf(fi[k], mj[k * 8], acc);
                tot = first ? acc : tot + acc;
                first = 0;
                k0 += len;
            }
            pi[j] = tot;
        }
    }
}

static inline float round_to(float x, int dtype) {
    switch (dtype) {
    case CKPT_LORA_F16: return ckpt_f16_to_f32_scalar(ckpt_f32_to_f16_scalar(x));
    case CKPT_LORA_BF16: return ckpt_bf16_to_f32_scalar(ckpt_f32_to_bf16_scalar(x));
    default: return x;
    }
}

// torch.linalg.norm(v, dim=1) for fp32 rows on x86 (ATen's AVX2 kernel, measured, lora.md §3.2 and
// Fixtures/lora/kernels): eight lanes over the whole 8-element chunks, each lane a non-fused sum of squares; the
// lanes summed 0→7; then the n mod 8 tail: when it has ≥ 4 elements the first 4 are added non-fused (the compiler's
// 4-wide epilogue: products first, then in-order adds), the rest with a fused multiply-add; sqrtf.
static float norm_portable(const float *v, size_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t whole = n / 8 * 8;
    for (size_t j = 0; j < whole; j += 8) {
        for (int l = 0; l < 8; l++) {
            float sq = v[j + l] * v[j + l];
            acc[l] = acc[l] + sq;
        }
    }
    float s = acc[0];
    for (int l = 1; l < 8; l++) s = s + acc[l];
    size_t j = whole;
    if (n - whole >= 4) {
        for (; j < whole + 4; j++) {
            float sq = v[j] * v[j];
            s = s + sq;
        }
    }
    for (; j < n; j++) s = fmaf(v[j], v[j], s);
    return sqrtf(s);
}

static void combine_portable(float *x, size_t rows, size_t cols, const ckpt_lora_term *t, const float *p, float *vbuf,
                             int dtype) {
    const float s = t->scale;
    for (size_t i = 0; i < rows; i++) {
        float *xi = x + i * cols;
        const float *pi = p + i * cols;
        switch (t->kind) {
        case CKPT_LORA_LINEAR:
            for (size_t j = 0; j < cols; j++) {
                float d = pi[j] * s;
                xi[j] = round_to(xi[j] + d, dtype);
            }
            break;
        case CKPT_LORA_EMBEDDING:
            for (size_t j = 0; j < cols; j++) {
                float d = round_to(pi[j] * s, dtype);
                xi[j] = round_to(xi[j] + d, dtype);
            }
            break;
        case CKPT_LORA_DORA: {
            for (size_t j = 0; j < cols; j++) {
                float d = pi[j] * s;
                vbuf[j] = xi[j] + d;
            }
            float factor = t->v[i] / norm_portable(vbuf, cols);
            for (size_t j = 0; j < cols; j++) xi[j] = round_to(factor * vbuf[j], dtype);
            break;
        }
        default: break;
        }
    }
}

// MARK: - AVX2 + FMA + F16C

#ifdef CKPT_LORA_X86
#define CKPT_LORA_AVX2 __attribute__((target("avx2,f16c,fma")))

// Stores one 8-column result of a k block into row `prow` at column j (`valid` ≤ 8 columns exist): the first block
// is stored, later ones added (tot = tot + acc, not fused), as MKL adds its block sums.
CKPT_LORA_AVX2 static inline void put8(float *prow, size_t j, size_t valid, __m256 v, int first) {
    if (valid == 8) {
        if (!first) v = _mm256_add_ps(_mm256_loadu_ps(prow + j), v);
        _mm256_storeu_ps(prow + j, v);
        return;
    }
    float t[8];
    _mm256_storeu_ps(t, v);
    for (size_t l = 0; l < valid; l++) prow[j + l] = first ? t[l] : prow[j + l] + t[l];
}

// Product on the packed matrix: 4 rows × 16 columns per step (8 independent accumulators, two contiguous loads and
// four broadcasts per k); every element keeps its own fused chain in k order, so the bits equal the portable code's.
CKPT_LORA_AVX2 static void product_avx2(const float *f, size_t rows, const float *m, size_t r, size_t cols, float *p,
                                        int mkl) {
    const size_t np = panels(cols);
    size_t i = 0;
    for (; i + 4 <= rows; i += 4) {
        const float *f0 = f + i * r, *f1 = f0 + r, *f2 = f1 + r, *f3 = f2 + r;
        float *p0 = p + i * cols, *p1 = p0 + cols, *p2 = p1 + cols, *p3 = p2 + cols;
        size_t q = 0;
        for (; q + 2 <= np; q += 2) {
            const float *ma = m + q * r * 8, *mb = ma + r * 8;
            size_t j = q * 8, va = cols - j < 8 ? cols - j : 8, vb = cols - j - 8 < 8 ? cols - j - 8 : 8;
            size_t k0 = 0;
            int first = 1;
            while (k0 < r) {
                size_t len = block_len(r, k0, mkl);
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
                for (size_t k = k0; k < k0 + len; k++) {
                    __m256 x = _mm256_loadu_ps(ma + k * 8), y = _mm256_loadu_ps(mb + k * 8);
                    __m256 s0 = _mm256_broadcast_ss(f0 + k), s1 = _mm256_broadcast_ss(f1 + k);
                    __m256 s2 = _mm256_broadcast_ss(f2 + k), s3 = _mm256_broadcast_ss(f3 + k);
                    a0 = _mm256_fmadd_ps(s0, x, a0); b0 = _mm256_fmadd_ps(s0, y, b0);
                    a1 = _mm256_fmadd_ps(s1, x, a1); b1 = _mm256_fmadd_ps(s1, y, b1);
                    a2 = _mm256_fmadd_ps(s2, x, a2); b2 = _mm256_fmadd_ps(s2, y, b2);
                    a3 = _mm256_fmadd_ps(s3, x, a3); b3 = _mm256_fmadd_ps(s3, y, b3);
                }
                put8(p0, j, va, a0, first); put8(p0, j + 8, vb, b0, first);
                put8(p1, j, va, a1, first); put8(p1, j + 8, vb, b1, first);
                put8(p2, j, va, a2, first); put8(p2, j + 8, vb, b2, first);
                put8(p3, j, va, a3, first); put8(p3, j + 8, vb, b3, first);
                first = 0;
                k0 += len;
            }
        }
        for (; q < np; q++) {
            const float *ma = m + q * r * 8;
            size_t j = q * 8, va = cols - j < 8 ? cols - j : 8;
            size_t k0 = 0;
            int first = 1;
            while (k0 < r) {
                size_t len = block_len(r, k0, mkl);
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                for (size_t k = k0; k < k0 + len; k++) {
                    __m256 x = _mm256_loadu_ps(ma + k * 8);
                    a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(f0 + k), x, a0);
                    a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(f1 + k), x, a1);
                    a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(f2 + k), x, a2);
                    a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(f3 + k), x, a3);
                }
                put8(p0, j, va, a0, first); put8(p1, j, va, a1, first);
                put8(p2, j, va, a2, first); put8(p3, j, va, a3, first);
                first = 0;
                k0 += len;
            }
        }
    }
    for (; i < rows; i++) {  // fewer than 4 rows left
        const float *fi = f + i * r;
        float *pi = p + i * cols;
        for (size_t q = 0; q < np; q++) {
            const float *ma = m + q * r * 8;
            size_t j = q * 8, va = cols - j < 8 ? cols - j : 8;
            size_t k0 = 0;
            int first = 1;
            while (k0 < r) {
                size_t len = block_len(r, k0, mkl);
                __m256 a0 = _mm256_setzero_ps();
                for (size_t k = k0; k < k0 + len; k++)
                    a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(fi + k), _mm256_loadu_ps(ma + k * 8), a0);
                put8(pi, j, va, a0, first);
                first = 0;
                k0 += len;
            }
        }
    }
}

// x = f32(T(x)) for 8 lanes: fp16 through F16C, bf16 with integer round-to-nearest-even (NaN kept quiet).
CKPT_LORA_AVX2 static inline __m256 round8(__m256 x, int dtype) {
    if (dtype == CKPT_LORA_F16) return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
    if (dtype == CKPT_LORA_BF16) {
        __m256i u = _mm256_castps_si256(x);
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
        __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb);
        r = _mm256_and_si256(r, _mm256_set1_epi32((int)0xffff0000u));
        // NaN: keep the payload's top bits, force the quiet bit (as ckpt_f32_to_bf16_scalar)
        __m256i absu = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
        __m256i isnan = _mm256_cmpgt_epi32(absu, _mm256_set1_epi32(0x7f800000));
        __m256i qnan = _mm256_and_si256(_mm256_or_si256(u, _mm256_set1_epi32(0x00400000)), _mm256_set1_epi32((int)0xffff0000u));
        return _mm256_castsi256_ps(_mm256_blendv_epi8(r, qnan, isnan));
    }
    return x;
}

CKPT_LORA_AVX2 static float norm_avx2(const float *v, size_t n) {
    __m256 acc = _mm256_setzero_ps();
    size_t whole = n / 8 * 8;
    for (size_t j = 0; j < whole; j += 8) {
        __m256 x = _mm256_loadu_ps(v + j);
        acc = _mm256_add_ps(acc, _mm256_mul_ps(x, x));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    float s = lanes[0];
    for (int l = 1; l < 8; l++) s = s + lanes[l];
    size_t j = whole;
    if (n - whole >= 4) {
        for (; j < whole + 4; j++) {
            float sq = v[j] * v[j];
            s = s + sq;
        }
    }
    for (; j < n; j++) s = fmaf(v[j], v[j], s);
    return sqrtf(s);
}

CKPT_LORA_AVX2 static void combine_avx2(float *x, size_t rows, size_t cols, const ckpt_lora_term *t, const float *p,
                                        float *vbuf, int dtype) {
    const float s = t->scale;
    const __m256 sv = _mm256_set1_ps(s);
    for (size_t i = 0; i < rows; i++) {
        float *xi = x + i * cols;
        const float *pi = p + i * cols;
        size_t j = 0;
        switch (t->kind) {
        case CKPT_LORA_LINEAR:
            for (; j + 8 <= cols; j += 8) {
                __m256 d = _mm256_mul_ps(_mm256_loadu_ps(pi + j), sv);
                _mm256_storeu_ps(xi + j, round8(_mm256_add_ps(_mm256_loadu_ps(xi + j), d), dtype));
            }
            for (; j < cols; j++) {
                float d = pi[j] * s;
                xi[j] = round_to(xi[j] + d, dtype);
            }
            break;
        case CKPT_LORA_EMBEDDING:
            for (; j + 8 <= cols; j += 8) {
                __m256 d = round8(_mm256_mul_ps(_mm256_loadu_ps(pi + j), sv), dtype);
                _mm256_storeu_ps(xi + j, round8(_mm256_add_ps(_mm256_loadu_ps(xi + j), d), dtype));
            }
            for (; j < cols; j++) {
                float d = round_to(pi[j] * s, dtype);
                xi[j] = round_to(xi[j] + d, dtype);
            }
            break;
        case CKPT_LORA_DORA: {
            for (; j + 8 <= cols; j += 8) {
                __m256 d = _mm256_mul_ps(_mm256_loadu_ps(pi + j), sv);
                _mm256_storeu_ps(vbuf + j, _mm256_add_ps(_mm256_loadu_ps(xi + j), d));
            }
            for (; j < cols; j++) {
                float d = pi[j] * s;
                vbuf[j] = xi[j] + d;
            }
            float factor = t->v[i] / norm_avx2(vbuf, cols);
            __m256 fv = _mm256_set1_ps(factor);
            for (j = 0; j + 8 <= cols; j += 8)
                _mm256_storeu_ps(xi + j, round8(_mm256_mul_ps(fv, _mm256_loadu_ps(vbuf + j)), dtype));
            for (; j < cols; j++) xi[j] = round_to(factor * vbuf[j], dtype);
            break;
        }
        default: break;
        }
    }
}

CKPT_LORA_AVX2 static void round_avx2(float *x, size_t n, int dtype) {
    size_t j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, round8(_mm256_loadu_ps(x + j), dtype));
    for (; j < n; j++) x[j] = round_to(x[j], dtype);
}

static int have_avx2(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    return cached;
}
#endif

static int use_avx2(int variant) {
#ifdef CKPT_LORA_X86
    if (variant == CKPT_LORA_PORTABLE) return 0;
    return have_avx2();
#else
    (void)variant;
    return 0;
#endif
}

// MARK: - Entry points

const char *ckpt_lora_variant(int variant) { return use_avx2(variant) ? "avx2+fma+f16c" : "portable"; }

void ckpt_lora_product(const float *f, size_t rows, const float *m, size_t r, size_t cols, float *p, float *packed,
                       int variant, int mkl_blocks) {
    for (size_t k = 0; k < r; k++) ckpt_lora_pack_row(m + k * cols, k, r, cols, packed);
#ifdef CKPT_LORA_X86
    if (use_avx2(variant)) { product_avx2(f, rows, packed, r, cols, p, mkl_blocks); return; }
#endif
    product_portable(f, rows, packed, r, cols, p, mkl_blocks);
}

float ckpt_lora_norm(const float *v, size_t n, int variant) {
#ifdef CKPT_LORA_X86
    if (use_avx2(variant)) return norm_avx2(v, n);
#endif
    return norm_portable(v, n);
}

void ckpt_lora_round(float *x, size_t n, int dtype, int variant) {
    if (dtype == CKPT_LORA_F32) return;
#ifdef CKPT_LORA_X86
    if (use_avx2(variant)) { round_avx2(x, n, dtype); return; }
#endif
    for (size_t j = 0; j < n; j++) x[j] = round_to(x[j], dtype);
}

void ckpt_lora_apply(float *x, size_t rows, size_t cols, const ckpt_lora_term *t, int dtype, float *work, int variant,
                     int mkl_blocks) {
    const int avx = use_avx2(variant);
    if (t->kind == CKPT_LORA_BIAS) {  // a 1-D tensor: x[i] = T(x[i] + fl(b[i]·s))
        for (size_t i = 0; i < rows * cols; i++) {
            float d = t->v[i] * t->scale;
            x[i] = round_to(x[i] + d, dtype);
        }
        return;
    }
    // Groups of up to 4 rows: their products in work[0 ..< 4·cols], then each row combined into x.
    // DoRA's merged row V_i goes to work[4·cols ..< 5·cols].
    float *p = work, *vbuf = work + 4 * cols;
    for (size_t i = 0; i < rows; i += 4) {
        size_t g = rows - i < 4 ? rows - i : 4;
        ckpt_lora_term sub = *t;
        sub.f = t->f + i * t->r;
        sub.v = t->v ? t->v + i : NULL;
#ifdef CKPT_LORA_X86
        if (avx) {
            product_avx2(sub.f, g, t->m, t->r, cols, p, mkl_blocks);
            combine_avx2(x + i * cols, g, cols, &sub, p, vbuf, dtype);
            continue;
        }
#endif
        (void)avx;
        product_portable(sub.f, g, t->m, t->r, cols, p, mkl_blocks);
        combine_portable(x + i * cols, g, cols, &sub, p, vbuf, dtype);
    }
}
