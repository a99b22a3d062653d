// Matrix products for the forward pass (kept apart from the quantization kernels): a register-blocked AVX2/FMA
// kernel that converts f16 weights in registers, and a portable fallback.
#include "CKernels.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define CKPT_X86 1
#include <immintrin.h>
#define CKPT_AVX2 __attribute__((target("avx2,f16c,fma")))
#endif

// MARK: - Matrix products for the forward pass

// y[t * ldy + r] = Σ_c x[t * cols + c] · w[r * cols + c] for t < T, r < rows, with w in fp16 (converted on the fly)
// or f32. Register-blocked: 4 rows × up to 4 tokens per pass, so every weight load feeds several FMAs.
static void matmul_portable(const float *x, size_t T, const void *w, int w_f16, size_t rows, size_t cols, float *y, size_t ldy) {
    for (size_t r = 0; r < rows; r++) {
        for (size_t t = 0; t < T; t++) {
            float s = 0;
            for (size_t c = 0; c < cols; c++) {
                float wv = w_f16 ? ckpt_f16_to_f32_scalar(((const uint16_t *)w)[r * cols + c]) : ((const float *)w)[r * cols + c];
                s += x[t * cols + c] * wv;
            }
            y[t * ldy + r] = s;
        }
    }
}

#ifdef CKPT_X86
CKPT_AVX2 static inline __m256 load_w(const void *w, int w_f16, size_t i) {
    return w_f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i))) : _mm256_loadu_ps((const float *)w + i);
}
CKPT_AVX2 static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
CKPT_AVX2 static void matmul_avx2(const float *x, size_t T, const void *w, int w_f16, size_t rows, size_t cols, float *y, size_t ldy) {
    size_t c8 = cols / 8 * 8;
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        size_t t = 0;
        for (; t < T; t += 4) {
            size_t nt = T - t < 4 ? T - t : 4;
            __m256 acc[4][4];
            for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) acc[a][b] = _mm256_setzero_ps();
            for (size_t c = 0; c < c8; c += 8) {
                __m256 w0 = load_w(w, w_f16, (r + 0) * cols + c), w1 = load_w(w, w_f16, (r + 1) * cols + c);
                __m256 w2 = load_w(w, w_f16, (r + 2) * cols + c), w3 = load_w(w, w_f16, (r + 3) * cols + c);
                for (size_t k = 0; k < nt; k++) {
                    __m256 xv = _mm256_loadu_ps(x + (t + k) * cols + c);
                    acc[k][0] = _mm256_fmadd_ps(xv, w0, acc[k][0]);
                    acc[k][1] = _mm256_fmadd_ps(xv, w1, acc[k][1]);
                    acc[k][2] = _mm256_fmadd_ps(xv, w2, acc[k][2]);
                    acc[k][3] = _mm256_fmadd_ps(xv, w3, acc[k][3]);
                }
            }
            for (size_t k = 0; k < nt; k++) {
                for (int j = 0; j < 4; j++) {
                    float s = hsum(acc[k][j]);
                    for (size_t c = c8; c < cols; c++) {
                        float wv = w_f16 ? ckpt_f16_to_f32_scalar(((const uint16_t *)w)[(r + j) * cols + c]) : ((const float *)w)[(r + j) * cols + c];
                        s += x[(t + k) * cols + c] * wv;
                    }
                    y[(t + k) * ldy + r + j] = s;
                }
            }
        }
    }
    if (r < rows) {
        const void *wr = w_f16 ? (const void *)((const uint16_t *)w + r * cols) : (const void *)((const float *)w + r * cols);
        matmul_portable(x, T, wr, w_f16, rows - r, cols, y + r, ldy);
    }
}
#endif

void ckpt_portable_matmul(const float *x, size_t T, const void *w, int w_f16, size_t rows, size_t cols, float *y, size_t ldy) {
    matmul_portable(x, T, w, w_f16, rows, cols, y, ldy);
}

void ckpt_matmul(const float *x, size_t T, const void *w, int w_f16, size_t rows, size_t cols, float *y, size_t ldy) {
#ifdef CKPT_X86
    extern int ckpt_use_avx2(void);
    if (ckpt_use_avx2()) { matmul_avx2(x, T, w, w_f16, rows, cols, y, ldy); return; }
#endif
    matmul_portable(x, T, w, w_f16, rows, cols, y, ldy);
}
