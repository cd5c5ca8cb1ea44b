//go:build !amd64

package sgemm

func bestKernel() *kernel { return &genericKernel }
