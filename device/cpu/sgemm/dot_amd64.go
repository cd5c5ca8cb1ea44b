package sgemm

//go:noescape
func dot3x4(kb int, rows *[7]*float32, out *[12]float32)
