package cpu

// The Winograd tile transforms (winograd.go), lanes at a time. Each has a
// pure Go body, the reference, and on amd64 with AVX2 and FMA an assembly
// twin for F(4x4, 3x3) and F(2x2, 3x3) (winograd_amd64.s). The twins use
// fused multiply-adds and the sparsity of the matrices, so they round
// differently in the last bits; every machine uses one of them throughout.
// nv, the number of lanes, is a multiple of winoLanes.

// winoInTile writes V = B^T d B for one a x a tile d of nv lanes: d[r][c]
// lane l is src[r*rs+c*cs+l], V[i][k] lane l goes to dst[(i*a+k)*ds+l].
func winoInTile(v *winoVariant, src []float32, rs, cs int, dst []float32, ds, nv int) {
	a := v.a
	_ = src[(a-1)*rs+(a-1)*cs+nv-1]
	_ = dst[(a*a-1)*ds+nv-1]
	if winoAsm {
		winoInAsm(v.m, &src[0], rs, cs, &dst[0], ds, nv)
		return
	}
	winoInTileGo(v, src, rs, cs, dst, ds, nv)
}

// winoOutTile writes Y = A^T M A for one tile M of nv lanes: M[i][k] lane
// l is src[(i*a+k)*ss+l], Y[r][c] lane l goes to dst[r*rs+c*cs+l].
func winoOutTile(v *winoVariant, src []float32, ss int, dst []float32, rs, cs, nv int) {
	a, m := v.a, v.m
	_ = src[(a*a-1)*ss+nv-1]
	_ = dst[(m-1)*rs+(m-1)*cs+nv-1]
	if winoAsm {
		winoOutAsm(v.m, &src[0], ss, &dst[0], rs, cs, nv)
		return
	}
	winoOutTileGo(v, src, ss, dst, rs, cs, nv)
}

// winoDyTile writes A q A^T for one m x m tile q of dy of nv lanes: q[r][c]
// lane l is src[r*rs+c*cs+l], the a x a result [i][k] goes to
// dst[(i*a+k)*ds+l].
func winoDyTile(v *winoVariant, src []float32, rs, cs int, dst []float32, ds, nv int) {
	a, m := v.a, v.m
	_ = src[(m-1)*rs+(m-1)*cs+nv-1]
	_ = dst[(a*a-1)*ds+nv-1]
	if winoAsm {
		winoDyAsm(v.m, &src[0], rs, cs, &dst[0], ds, nv)
		return
	}
	winoDyTileGo(v, src, rs, cs, dst, ds, nv)
}

type lanes [winoLanes]float32

// axpyLanes sets acc += k*x.
func axpyLanes(acc *lanes, k float32, x *lanes) {
	for l := range acc {
		acc[l] += k * x[l]
	}
}

func winoInTileGo(v *winoVariant, src []float32, rs, cs int, dst []float32, ds, nv int) {
	a := v.a
	var d, t [36]lanes
	for l0 := 0; l0 < nv; l0 += winoLanes {
		for r := 0; r < a; r++ {
			for c := 0; c < a; c++ {
				copy(d[r*a+c][:], src[r*rs+c*cs+l0:])
			}
		}
		for i := 0; i < a; i++ { // t = B^T d
			for c := 0; c < a; c++ {
				t[i*a+c] = lanes{}
				for r := 0; r < a; r++ {
					axpyLanes(&t[i*a+c], v.bt[i*a+r], &d[r*a+c])
				}
			}
		}
		for i := 0; i < a; i++ { // V = t B
			for k := 0; k < a; k++ {
				var acc lanes
				for c := 0; c < a; c++ {
					axpyLanes(&acc, v.bt[k*a+c], &t[i*a+c])
				}
				copy(dst[(i*a+k)*ds+l0:], acc[:])
			}
		}
	}
}

func winoOutTileGo(v *winoVariant, src []float32, ss int, dst []float32, rs, cs, nv int) {
	a, m := v.a, v.m
	var t [24]lanes
	for l0 := 0; l0 < nv; l0 += winoLanes {
		for r := 0; r < m; r++ { // t = A^T M
			for k := 0; k < a; k++ {
				t[r*a+k] = lanes{}
				for i := 0; i < a; i++ {
					var x lanes
					copy(x[:], src[(i*a+k)*ss+l0:])
					axpyLanes(&t[r*a+k], v.at[r*a+i], &x)
				}
			}
		}
		for r := 0; r < m; r++ { // Y = t A
			for c := 0; c < m; c++ {
				var acc lanes
				for k := 0; k < a; k++ {
					axpyLanes(&acc, v.at[c*a+k], &t[r*a+k])
				}
				copy(dst[r*rs+c*cs+l0:], acc[:])
			}
		}
	}
}

func winoDyTileGo(v *winoVariant, src []float32, rs, cs int, dst []float32, ds, nv int) {
	a, m := v.a, v.m
	var q [16]lanes
	var t [24]lanes
	for l0 := 0; l0 < nv; l0 += winoLanes {
		for r := 0; r < m; r++ {
			for c := 0; c < m; c++ {
				copy(q[r*m+c][:], src[r*rs+c*cs+l0:])
			}
		}
		for i := 0; i < a; i++ { // t = A q, A = (A^T)^T
			for c := 0; c < m; c++ {
				t[i*m+c] = lanes{}
				for r := 0; r < m; r++ {
					axpyLanes(&t[i*m+c], v.at[r*a+i], &q[r*m+c])
				}
			}
		}
		for i := 0; i < a; i++ { // t A^T
			for k := 0; k < a; k++ {
				var acc lanes
				for c := 0; c < m; c++ {
					axpyLanes(&acc, v.at[c*a+k], &t[i*m+c])
				}
				copy(dst[(i*a+k)*ds+l0:], acc[:])
			}
		}
	}
}
