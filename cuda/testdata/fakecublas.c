/*
 * A fake cuBLAS for the tests of package cuda (fake_test.go), to go with
 * fakecuda.c: "device" pointers are host pointers and Sgemm is a plain
 * column-major triple loop with cuBLAS's argument checks (GemmEx also
 * with its checks of the argument types). Written from the
 * cuBLAS documentation with plain C types, on purpose not sharing api.h.
 *
 * FAKE_CUBLAS_MAJOR (a -D flag, default 12) is the major version it reports;
 * like a real cuBLAS, its cublasCreate fails (CUBLAS_STATUS_NOT_INITIALIZED)
 * under a driver older than that major, read from FAKE_CUDA_DRIVER_VERSION
 * (the variable the fake driver reports, default 12040).
 *
 * -DFAKE_NO_WORKSPACE leaves out cublasSetWorkspace_v2 (which graph
 * captures need).
 *
 * Build: gcc -shared -fPIC -o libfakecublas.so fakecublas.c
 */
#include <stdlib.h>

#ifndef FAKE_CUBLAS_MAJOR
#define FAKE_CUBLAS_MAJOR 12
#endif

typedef int cublasStatus_t;
enum { SUCCESS = 0, NOT_INITIALIZED = 1, INVALID_VALUE = 7 };
#define MAGIC 0x424c4153u

struct handle { unsigned magic; void *stream; int mode; void *ws; size_t wsbytes; };

static int valid(struct handle *h) { return h && h->magic == MAGIC; }
static int maxi(int a, int b) { return a > b ? a : b; }

cublasStatus_t cublasCreate_v2(struct handle **h) {
	const char *drv = getenv("FAKE_CUDA_DRIVER_VERSION");
	if (!h) return INVALID_VALUE;
	if ((drv ? atoi(drv) : 12040) / 1000 < FAKE_CUBLAS_MAJOR) return NOT_INITIALIZED;
	*h = calloc(1, sizeof **h);
	(*h)->magic = MAGIC;
	return SUCCESS;
}
cublasStatus_t cublasDestroy_v2(struct handle *h) {
	if (!valid(h)) return NOT_INITIALIZED;
	h->magic = 0;
	free(h);
	return SUCCESS;
}
cublasStatus_t cublasSetStream_v2(struct handle *h, void *s) {
	if (!valid(h)) return NOT_INITIALIZED;
	h->stream = s;
	return SUCCESS;
}
/* CUBLAS_DEFAULT_MATH=0, TENSOR_OP=1, PEDANTIC=2, TF32_TENSOR_OP=3, optionally | 16. */
cublasStatus_t cublasSetMathMode(struct handle *h, int mode) {
	if (!valid(h)) return NOT_INITIALIZED;
	if ((mode & ~16) > 3) return INVALID_VALUE;
	h->mode = mode;
	return SUCCESS;
}
cublasStatus_t cublasGetVersion_v2(struct handle *h, int *v) {
	(void)h;
	if (!v) return INVALID_VALUE;
	*v = FAKE_CUBLAS_MAJOR * 10000 + 405;
	return SUCCESS;
}
#ifndef FAKE_NO_WORKSPACE
/* Like cuBLAS: the workspace must be 256-byte aligned, and NULL only with size 0. */
cublasStatus_t cublasSetWorkspace_v2(struct handle *h, void *ws, size_t bytes) {
	if (!valid(h)) return NOT_INITIALIZED;
	if ((!ws && bytes) || ((size_t)ws % 256) != 0) return INVALID_VALUE;
	h->ws = ws;
	h->wsbytes = bytes;
	return SUCCESS;
}
#endif
/* MAJOR_VERSION=0, MINOR_VERSION=1, PATCH_LEVEL=2 */
cublasStatus_t cublasGetProperty(int type, int *v) {
	static const int ver[3] = {FAKE_CUBLAS_MAJOR, 4, 5};
	if (type < 0 || type > 2 || !v) return INVALID_VALUE;
	*v = ver[type];
	return SUCCESS;
}

/* C = alpha*op(A)*op(B) + beta*C, column-major; op 0=N, 1=T, 2=C (= T for reals). */
static cublasStatus_t gemm(struct handle *h, int ta, int tb, int m, int n, int k, const float *alpha,
    const float *A, int lda, const float *B, int ldb, const float *beta, float *C, int ldc) {
	if (!valid(h)) return NOT_INITIALIZED;
	if (ta < 0 || ta > 2 || tb < 0 || tb > 2 || m < 0 || n < 0 || k < 0) return INVALID_VALUE;
	if (lda < maxi(1, ta ? k : m) || ldb < maxi(1, tb ? n : k) || ldc < maxi(1, m)) return INVALID_VALUE;
	if (!alpha || !beta) return INVALID_VALUE;
	float al = *alpha, be = *beta;
	for (int j = 0; j < n; j++) {
		for (int i = 0; i < m; i++) {
			float sum = 0;
			for (int l = 0; l < k; l++) {
				float a = ta ? A[l + (long)i * lda] : A[i + (long)l * lda];
				float b = tb ? B[j + (long)l * ldb] : B[l + (long)j * ldb];
				sum += a * b;
			}
			float *c = &C[i + (long)j * ldc];
			*c = al * sum + (be == 0 ? 0 : be * *c); /* beta == 0: C is not read */
		}
	}
	return SUCCESS;
}

cublasStatus_t cublasSgemm_v2(struct handle *h, int ta, int tb, int m, int n, int k, const float *alpha,
    const float *A, int lda, const float *B, int ldb, const float *beta, float *C, int ldc) {
	return gemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* cublasGemmEx with the checks of a real cuBLAS on the argument types:
 * A and B both CUDA_R_32F (0) or both CUDA_R_16BF (14, read as the upper
 * 16 bits of a float), C CUDA_R_32F, compute type CUBLAS_COMPUTE_32F (68),
 * alpha and beta float; any other combination is NOT_SUPPORTED (15), an
 * algorithm other than CUBLAS_GEMM_DEFAULT (-1) INVALID_VALUE. */
enum { R_32F = 0, R_16BF = 14, COMPUTE_32F = 68, GEMM_DEFAULT = -1, NOT_SUPPORTED = 15 };
static float elem(const void *p, int type, long i) {
	if (type == R_16BF) {
		unsigned u = (unsigned)((const unsigned short *)p)[i] << 16;
		float f;
		__builtin_memcpy(&f, &u, sizeof f);
		return f;
	}
	return ((const float *)p)[i];
}
cublasStatus_t cublasGemmEx(struct handle *h, int ta, int tb, int m, int n, int k, const void *alpha,
    const void *A, int atype, int lda, const void *B, int btype, int ldb, const void *beta,
    void *C, int ctype, int ldc, int compute, int algo) {
	if (!valid(h)) return NOT_INITIALIZED;
	if (algo != GEMM_DEFAULT) return INVALID_VALUE;
	if (atype != btype || (atype != R_32F && atype != R_16BF) || ctype != R_32F || compute != COMPUTE_32F) return NOT_SUPPORTED;
	if (ta < 0 || ta > 2 || tb < 0 || tb > 2 || m < 0 || n < 0 || k < 0) return INVALID_VALUE;
	if (lda < maxi(1, ta ? k : m) || ldb < maxi(1, tb ? n : k) || ldc < maxi(1, m)) return INVALID_VALUE;
	if (!alpha || !beta) return INVALID_VALUE;
	float al = *(const float *)alpha, be = *(const float *)beta;
	float *c = C;
	for (int j = 0; j < n; j++) {
		for (int i = 0; i < m; i++) {
			float sum = 0;
			for (int l = 0; l < k; l++) {
				float a = ta ? elem(A, atype, l + (long)i * lda) : elem(A, atype, i + (long)l * lda);
				float b = tb ? elem(B, btype, j + (long)l * ldb) : elem(B, btype, l + (long)j * ldb);
				sum += a * b;
			}
			float *cc = &c[i + (long)j * ldc];
			*cc = al * sum + (be == 0 ? 0 : be * *cc);
		}
	}
	return SUCCESS;
}

cublasStatus_t cublasSgemmStridedBatched(struct handle *h, int ta, int tb, int m, int n, int k, const float *alpha,
    const float *A, int lda, long long sA, const float *B, int ldb, long long sB, const float *beta,
    float *C, int ldc, long long sC, int batch) {
	if (batch < 0) return INVALID_VALUE;
	for (int i = 0; i < batch; i++) {
		cublasStatus_t r = gemm(h, ta, tb, m, n, k, alpha, A + i * sA, lda, B + i * sB, ldb, beta, C + i * sC, ldc);
		if (r) return r;
	}
	return SUCCESS;
}
