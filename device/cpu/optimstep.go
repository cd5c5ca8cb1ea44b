package cpu

import "github.com/trainer-go/trainer/device"

// OptimizerStep: see device.Backend. Segment by segment, with the plain
// updates on views (kept in the backend, so a step allocates nothing).
func (b *Backend) OptimizerStep(params, grads, m, v device.Buffer, segs []device.OptimSegment, s device.OptimStep) {
	for _, g := range segs {
		c := s.Scalars(g)
		view := func(i int, x device.Buffer) device.Buffer {
			if x == nil {
				return nil
			}
			b.segViews[i] = buf{dt: device.F32, f: f32(x)[g.Off : g.Off+g.N : g.Off+g.N]}
			return &b.segViews[i]
		}
		p, gr, mm, vv := view(0, params), view(1, grads), view(2, m), view(3, v)
		switch s.Kind {
		case device.OptimAdam, device.OptimAdamW:
			b.Adam(p, gr, mm, vv, g.N, c.LR, float32(s.Beta1), float32(s.Beta2), c.Eps, c.L2, c.Decay)
		case device.OptimSGD:
			b.SGD(p, gr, mm, g.N, c.LR, float32(s.Momentum), c.L2, s.Nesterov)
		case device.OptimRMSprop:
			b.RMSprop(p, gr, vv, mm, g.N, c.LR, float32(s.Alpha), c.Eps, c.L2, float32(s.Momentum))
		}
	}
}
