package export

import (
	"encoding/binary"
	"math"
)

// The protobuf wire encoding, as much of it as the ONNX messages need:
// varints, fixed 32-bit floats and length-delimited bytes and messages.
// ONNX's onnx.proto is proto2, so repeated scalars are written unpacked
// (one key per value), the encoding every protobuf parser accepts.

// Wire types.
const (
	wireVarint = 0
	wireBytes  = 2
	wireFixed  = 5 // 32-bit
)

// pb is a message being encoded.
type pb []byte

func (b *pb) key(field, wire int) { *b = binary.AppendUvarint(*b, uint64(field)<<3|uint64(wire)) }

// varint writes an int64 field (negative values take ten bytes, as
// protobuf's int64 does).
func (b *pb) varint(field int, v int64) {
	b.key(field, wireVarint)
	*b = binary.AppendUvarint(*b, uint64(v))
}

func (b *pb) float(field int, v float32) {
	b.key(field, wireFixed)
	*b = binary.LittleEndian.AppendUint32(*b, math.Float32bits(v))
}

func (b *pb) bytes(field int, v []byte) {
	b.key(field, wireBytes)
	*b = binary.AppendUvarint(*b, uint64(len(v)))
	*b = append(*b, v...)
}

func (b *pb) str(field int, s string) { b.bytes(field, []byte(s)) }

// strOpt writes s unless it is empty (an unset optional field).
func (b *pb) strOpt(field int, s string) {
	if s != "" {
		b.str(field, s)
	}
}

// msg writes an embedded message.
func (b *pb) msg(field int, m pb) { b.bytes(field, m) }
