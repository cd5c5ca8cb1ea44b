// The part of Open MPI's ABI that trainer uses, declared without mpi.h so
// that the program builds where Open MPI is not installed; libmpi.so.40 is
// opened at run time (mpi_cgo.go). In Open MPI, handles are pointers to
// global objects exported by libmpi (MPI_COMM_WORLD is &ompi_mpi_comm_world,
// MPI_FLOAT is &ompi_mpi_float, ...), so their addresses come from dlsym
// like the functions'. A test compiles these declarations against the real
// mpi.h where it is installed.
#ifndef TRAINER_MPI_API_H
#define TRAINER_MPI_API_H

#include <stddef.h>

typedef void *tr_MPI_Comm;
typedef void *tr_MPI_Datatype;
typedef void *tr_MPI_Op;
typedef void *tr_MPI_Errhandler;

#define TR_MPI_SUCCESS 0
#define TR_MPI_THREAD_FUNNELED 1
#define TR_MPI_IN_PLACE ((void *)1)
#define TR_MPI_MAX_ERROR_STRING 256
#define TR_MPI_MAX_LIBRARY_VERSION_STRING 256

typedef int (*tr_MPI_Init_thread_t)(int *argc, char ***argv, int required, int *provided);
typedef int (*tr_MPI_Initialized_t)(int *flag);
typedef int (*tr_MPI_Finalized_t)(int *flag);
typedef int (*tr_MPI_Finalize_t)(void);
typedef int (*tr_MPI_Comm_rank_t)(tr_MPI_Comm comm, int *rank);
typedef int (*tr_MPI_Comm_size_t)(tr_MPI_Comm comm, int *size);
typedef int (*tr_MPI_Comm_set_errhandler_t)(tr_MPI_Comm comm, tr_MPI_Errhandler h);
typedef int (*tr_MPI_Allreduce_t)(const void *sendbuf, void *recvbuf, int count, tr_MPI_Datatype dt, tr_MPI_Op op, tr_MPI_Comm comm);
typedef int (*tr_MPI_Bcast_t)(void *buf, int count, tr_MPI_Datatype dt, int root, tr_MPI_Comm comm);
typedef int (*tr_MPI_Abort_t)(tr_MPI_Comm comm, int code);
typedef int (*tr_MPI_Error_string_t)(int code, char *s, int *len);
typedef int (*tr_MPI_Get_library_version_t)(char *s, int *len);

// Every entry point and handle, resolved by name when the library loads.
typedef struct {
	void *MPI_Init_thread, *MPI_Initialized, *MPI_Finalized, *MPI_Finalize;
	void *MPI_Comm_rank, *MPI_Comm_size, *MPI_Comm_set_errhandler;
	void *MPI_Allreduce, *MPI_Bcast, *MPI_Abort, *MPI_Error_string, *MPI_Get_library_version;
	void *comm_world, *float_, *double_, *byte_, *op_sum, *op_max, *errors_return;
} tr_mpi_api;

#endif
