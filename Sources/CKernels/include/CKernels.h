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
/// The portable variants of every kernel, callable directly so that tests compare them with the dispatched (AVX2)
/// ones on the same inputs — no process-wide switch.
void ckpt_portable_f16_to_f32(const uint16_t *src, float *dst, size_t n);
void ckpt_portable_f32_to_f16(const float *src, uint16_t *dst, size_t n);
void ckpt_portable_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
void ckpt_portable_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
void ckpt_portable_add_f16(const uint16_t *a, const uint16_t *b, uint16_t *out, size_t n, int subtract);
void ckpt_portable_add_f32(const float *a, const float *b, float *out, size_t n, int subtract);
void ckpt_portable_quantize_q8_0(const float *src, uint8_t *dst, size_t nblocks, double *stats);
void ckpt_portable_ct_pack(const float *src, size_t rows, size_t cols, size_t group, int dtype, uint8_t *packed, double *stats);
void ckpt_portable_matmul(const float *x, size_t T, const void *w, int w_f16, size_t rows, size_t cols, float *y, size_t ldy);

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

// MARK: LoRA merge (lora.c): peft 0.21.2's merge_and_unload() arithmetic, bit for bit.

/// Element type a merge rounds to after every step (the model's dtype in peft).
enum { CKPT_LORA_F32 = 0, CKPT_LORA_F16 = 1, CKPT_LORA_BF16 = 2 };
/// What a term adds to a block of rows.
enum { CKPT_LORA_LINEAR = 0, CKPT_LORA_EMBEDDING = 1, CKPT_LORA_DORA = 2, CKPT_LORA_BIAS = 3 };
/// Kernel choice: 0 automatic (AVX2+FMA+F16C when the CPU has them), 1 portable, 2 AVX2 when available.
enum { CKPT_LORA_AUTO = 0, CKPT_LORA_PORTABLE = 1, CKPT_LORA_AVX2_VARIANT = 2 };

/// One LoRA term for a block of `rows` output rows (all pointers to f32).
typedef struct ckpt_lora_term {
    int kind;          ///< CKPT_LORA_LINEAR, _EMBEDDING, _DORA or _BIAS
    size_t r;          ///< rank (0 for _BIAS)
    const float *f;    ///< rows × r: LINEAR/DORA rows of lora_B; EMBEDDING columns of lora_embedding_A
    const float *m;    ///< r × cols packed (ckpt_lora_pack_row): LINEAR/DORA lora_A; EMBEDDING lora_embedding_B transposed
    const float *v;    ///< rows: DORA lora_magnitude_vector, BIAS lora_B.bias (NULL otherwise)
    float scale;       ///< f32(alpha / r) or f32(alpha / √r)
} ckpt_lora_term;

/// Applies one term to x (rows × cols, values already of dtype `dtype`, widened), in place, rounding to `dtype`:
/// P = f·m (per element a fused multiply-add chain from +0 over k ascending; with `mkl_blocks`, MKL's k blocks for
/// r > 192, added left to right), then LINEAR x = T(x + fl(P·s)); EMBEDDING x = T(x + T(fl(P·s))); DORA
/// V = fl(x + fl(P·s)), x = T(fl(fl(v/‖V‖)·V)) with ATen's AVX2 norm order; BIAS (cols = 1) x = T(x + fl(v·s)).
/// `work`: 5·cols floats.
void ckpt_lora_apply(float *x, size_t rows, size_t cols, const ckpt_lora_term *term, int dtype, float *work,
                     int variant, int mkl_blocks);
/// Floats of an r × cols matrix packed in panels of 8 columns (r · ⌈cols/8⌉ · 8; the last panel zero-padded).
size_t ckpt_lora_packed_floats(size_t r, size_t cols);
/// Writes row k (cols floats) of an r × cols matrix into its packed layout: element (k, j) at
/// packed[(j/8)·r·8 + k·8 + j%8], padding columns set to 0.
void ckpt_lora_pack_row(const float *row, size_t k, size_t r, size_t cols, float *packed);
/// x[i] = f32(T(x[i])) (T = dtype; nothing for f32).
void ckpt_lora_round(float *x, size_t n, int dtype, int variant);
/// p (rows × cols) = f (rows × r) · m (r × cols, row-major, packed into `packed` first: ckpt_lora_packed_floats)
/// in the order described at ckpt_lora_apply (tests).
void ckpt_lora_product(const float *f, size_t rows, const float *m, size_t r, size_t cols, float *p, float *packed,
                       int variant, int mkl_blocks);
/// ‖v‖₂ in torch.linalg.norm's order for an fp32 row (tests).
float ckpt_lora_norm(const float *v, size_t n, int variant);
/// The variant `variant` resolves to on this CPU: "avx2+fma+f16c" or "portable".
const char *ckpt_lora_variant(int variant);

/// Scalar helpers (portable, used by tests and by tails).
float ckpt_f16_to_f32_scalar(uint16_t h);
uint16_t ckpt_f32_to_f16_scalar(float f);
float ckpt_bf16_to_f32_scalar(uint16_t h);
uint16_t ckpt_f32_to_bf16_scalar(float f);

#ifdef __cplusplus
}
#endif
#endif
