package kernels

// pool.cu: max and average pooling, forward and backward.

// MaxPoolFwdKernel is maxpool_fwd_f32.
var MaxPoolFwdKernel = &Kernel{Name: "maxpool_fwd_f32", File: "pool.cu", Work: "P*OH*OW",
	Doc: "Backend.MaxPoolForward: window max and the plane index iy*W+ix of its first occurrence (row-major scan); with relu != 0 of max(0, x) (MaxPoolReLUForward)."}

// MaxPoolFwd launches maxpool_fwd_f32(x, y, argmax, geometry, relu).
func MaxPoolFwd[P any](l Launcher[P], g Pool, x, y, argmax P, relu bool) {
	var a Args[P]
	a.ptr("x", ConstFloatPtr, x).ptr("y", FloatPtr, y).ptr("argmax", IntPtr, argmax).pool(g)
	a.i("relu", b2i(relu))
	l.Launch(MaxPoolFwdKernel, g.P*g.OH*g.OW, a)
}

// MaxPoolBwdKernel is maxpool_bwd_f32.
var MaxPoolBwdKernel = &Kernel{Name: "maxpool_bwd_f32", File: "pool.cu", Work: "P*H*W",
	Doc: "Backend.MaxPoolBackward: overwrites dx; each dx element gathers the dy whose argmax names it (argmax from maxpool_fwd_f32); with y not NULL only those with y > 0 (MaxPoolReLUBackward)."}

// MaxPoolBwd launches maxpool_bwd_f32(dy, y, argmax, dx, geometry); y may
// be the null pointer (no ReLU mask).
func MaxPoolBwd[P any](l Launcher[P], g Pool, dy, y, argmax, dx P) {
	var a Args[P]
	a.ptr("dy", ConstFloatPtr, dy).ptr("y", ConstFloatPtr, y).ptr("argmax", ConstIntPtr, argmax).ptr("dx", FloatPtr, dx).pool(g)
	l.Launch(MaxPoolBwdKernel, g.P*g.H*g.W, a)
}

// AvgPoolFwdKernel is avgpool_fwd_f32.
var AvgPoolFwdKernel = &Kernel{Name: "avgpool_fwd_f32", File: "pool.cu", Work: "P*OH*OW",
	Doc: "Backend.AvgPoolForward: window sum * (1/(KH*KW))."}

// AvgPoolFwd launches avgpool_fwd_f32(x, y, geometry).
func AvgPoolFwd[P any](l Launcher[P], g Pool, x, y P) {
	var a Args[P]
	a.ptr("x", ConstFloatPtr, x).ptr("y", FloatPtr, y).pool(g)
	l.Launch(AvgPoolFwdKernel, g.P*g.OH*g.OW, a)
}

// AvgPoolBwdKernel is avgpool_bwd_f32.
var AvgPoolBwdKernel = &Kernel{Name: "avgpool_bwd_f32", File: "pool.cu", Work: "P*H*W",
	Doc: "Backend.AvgPoolBackward: overwrites dx with the sum of dy*(1/(KH*KW)) over the covering windows, gathered."}

// AvgPoolBwd launches avgpool_bwd_f32(dy, dx, geometry).
func AvgPoolBwd[P any](l Launcher[P], g Pool, dy, dx P) {
	var a Args[P]
	a.ptr("dy", ConstFloatPtr, dy).ptr("dx", FloatPtr, dx).pool(g)
	l.Launch(AvgPoolBwdKernel, g.P*g.H*g.W, a)
}
