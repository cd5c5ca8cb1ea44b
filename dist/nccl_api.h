// The part of NCCL's ABI that trainer uses, declared without nccl.h (the
// library is opened at run time: nccl_cgo.go). Values from nccl.h 2.x.
#ifndef TRAINER_NCCL_API_H
#define TRAINER_NCCL_API_H

#include <stddef.h>

#define TR_NCCL_UNIQUE_ID_BYTES 128
typedef struct { char internal[TR_NCCL_UNIQUE_ID_BYTES]; } tr_ncclUniqueId;
typedef void *tr_ncclComm_t;
typedef void *tr_cudaStream_t;

#define TR_ncclSuccess 0
#define TR_ncclFloat32 7
#define TR_ncclSum 0
#define TR_ncclMax 2
#define TR_ncclAvg 4 /* NCCL 2.10 and newer */

typedef int (*tr_ncclGetVersion_t)(int *version);
typedef int (*tr_ncclGetUniqueId_t)(tr_ncclUniqueId *id);
typedef int (*tr_ncclCommInitRank_t)(tr_ncclComm_t *comm, int nranks, tr_ncclUniqueId id, int rank);
typedef int (*tr_ncclAllReduce_t)(const void *send, void *recv, size_t count, int dt, int op, tr_ncclComm_t comm, tr_cudaStream_t stream);
typedef int (*tr_ncclBroadcast_t)(const void *send, void *recv, size_t count, int dt, int root, tr_ncclComm_t comm, tr_cudaStream_t stream);
typedef int (*tr_ncclCommGetAsyncError_t)(tr_ncclComm_t comm, int *result);
typedef int (*tr_ncclCommAbort_t)(tr_ncclComm_t comm);
typedef int (*tr_ncclCommDestroy_t)(tr_ncclComm_t comm);
typedef const char *(*tr_ncclGetErrorString_t)(int result);

typedef struct {
	void *ncclGetVersion, *ncclGetUniqueId, *ncclCommInitRank, *ncclAllReduce, *ncclBroadcast;
	void *ncclCommGetAsyncError, *ncclCommAbort, *ncclCommDestroy, *ncclGetErrorString;
} tr_nccl_api;

#endif
