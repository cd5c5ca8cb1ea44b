//go:build !amd64

package cpu

// winoAsm is false off amd64: the pure Go transforms run.
var winoAsm = false

func winoInAsm(m int, src *float32, rs, cs int, dst *float32, ds, nv int)  { panic("cpu: no AVX2") }
func winoOutAsm(m int, src *float32, ss int, dst *float32, rs, cs, nv int) { panic("cpu: no AVX2") }
func winoDyAsm(m int, src *float32, rs, cs int, dst *float32, ds, nv int)  { panic("cpu: no AVX2") }

func winoTransInAVX2(src *float32, ss int, dst *float32, ds, cols int)  { panic("cpu: no AVX2") }
func winoTransOutAVX2(src *float32, ss int, dst *float32, ds, cols int) { panic("cpu: no AVX2") }
