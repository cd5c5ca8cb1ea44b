package cpu

// winoAsm selects the assembly transforms; tests switch it to compare.
var winoAsm = false

func winoInAsm(m int, src *float32, rs, cs int, dst *float32, ds, nv int)  { panic("cpu: no AVX2") }
func winoOutAsm(m int, src *float32, ss int, dst *float32, rs, cs, nv int) { panic("cpu: no AVX2") }
func winoDyAsm(m int, src *float32, rs, cs int, dst *float32, ds, nv int)  { panic("cpu: no AVX2") }
