//go:build !amd64

package sgemm

func bestKernel() *kernel { return &genericKernel }

func avx2OrGeneric() *kernel { return &genericKernel }
