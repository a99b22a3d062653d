// CKernels: element-wise conversion kernels for ckpt.
//
// Each kernel has a portable C version and, on x86-64, an AVX2+F16C(+FMA) version compiled with a per-function
// target attribute; the best one is chosen once at run time with __builtin_cpu_supports. The package therefore needs
// no global -mf16c flag (which would break arm64 builds and bar other packages from depending on CkptKit).
//
// Rounding: every narrowing conversion rounds to nearest, ties to even. NaNs stay NaN (quieted), signs are kept.
#ifndef CKPT_KERNELS_H
#define CKPT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Name of the instruction-set variant the dispatcher chose: "avx2+f16c" or "portable".
const char *ckpt_kernels_variant(void);
/// Force the portable variant (for tests comparing the two); 0 restores automatic choice.
void ckpt_kernels_force_portable(int force);

/// IEEE binary16 → binary32 (exact).
void ckpt_f16_to_f32(const uint16_t *src, float *dst, size_t n);
/// binary32 → binary16, round to nearest even; overflow → ±inf; NaN → quiet NaN keeping sign and top payload bits.
void ckpt_f32_to_f16(const float *src, uint16_t *dst, size_t n);
/// bfloat16 → binary32 (exact).
void ckpt_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
/// binary32 → bfloat16, round to nearest even; NaN → quiet NaN keeping sign and top payload bits.
void ckpt_f32_to_bf16(const float *src, uint16_t *dst, size_t n);

/// out[i] = f16(f32(a[i]) + sign·f32(b[i])) for fp16 a, b, out (sign = +1 add, -1 subtract): an fp16 add or
/// subtract correctly rounded, exactly what torch computes for `a += b` / `a -= b` on fp16 tensors.
void ckpt_add_f16(const uint16_t *a, const uint16_t *b, uint16_t *out, size_t n, int subtract);
/// out[i] = a[i] + sign·b[i] in f32.
void ckpt_add_f32(const float *a, const float *b, float *out, size_t n, int subtract);

/// GGML Q8_0: `nblocks` blocks of 32 f32 values → 34-byte blocks (fp16 d, 32 int8), exactly as ggml's reference /
/// gguf-py quantize. `stats` (nullable) accumulates [Σw², Σerr², max|err|] of the dequantized values.
void ckpt_quantize_q8_0(const float *src, uint8_t *dst, size_t nblocks, double *stats);
/// compressed-tensors int8 scales per row (group = cols) or per group, in the weight dtype (1 f16, 2 bf16) as bits.
void ckpt_ct_scales(const float *src, size_t rows, size_t cols, size_t group, int dtype, uint16_t *scales);
/// compressed-tensors pack-quantized bytes (q + 128, rows padded with 0 to a multiple of 4). `stats` as above.
void ckpt_ct_pack(const float *src, size_t rows, size_t cols, size_t group, int dtype, uint8_t *packed, double *stats);

/// max |src[j]| over n values (a group's, possibly taken piece by piece).
float ckpt_ct_absmax(const float *src, size_t n);
/// The compressed-tensors scale for a group whose |w| maximum is `absmax`, as bits of `dtype` (1 f16, 2 bf16).
uint16_t ckpt_ct_scale_bits(float absmax, int dtype);
/// Packs n values of one group with a given scale (bits of `dtype`): the bytes ckpt_ct_pack writes for them.
void ckpt_ct_pack_scaled(const float *w, size_t n, uint16_t scale_bits, int dtype, uint8_t *out, double *stats);

/// y[t·ldy + r] = Σ_c x[t·cols + c] · w[r·cols + c] (t < T, r < rows), w fp16 (w_f16 = 1, converted on the fly)
/// or f32; register-blocked 4 rows × 4 tokens with FMA.
void ckpt_matmul(const float *x, size_t T, const void *w, int w_f16, size_t rows, size_t cols, float *y, size_t ldy);

/// Installs SIGINT/SIGTERM handlers that only record the signal (see ckpt_interrupt_signal).
void ckpt_interrupts_install(void);
/// The signal received since ckpt_interrupts_install (0: none).
int ckpt_interrupt_signal(void);
/// Tests: behave as if `sig` had been received.
void ckpt_interrupt_raise_for_tests(int sig);

/// Scalar helpers (portable, used by tests and by tails).
float ckpt_f16_to_f32_scalar(uint16_t h);
uint16_t ckpt_f32_to_f16_scalar(float f);
float ckpt_bf16_to_f32_scalar(uint16_t h);
uint16_t ckpt_f32_to_bf16_scalar(float f);

#ifdef __cplusplus
}
#endif
#endif
