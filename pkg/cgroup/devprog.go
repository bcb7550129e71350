package cgroup

// The device program of cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program
// the kernel runs on every open and mknod of a device node by a process
// of the cgroup. Its context (struct bpf_cgroup_dev_ctx) is three 32-bit
// words: access_type (the access bits << 16 | the device type), major
// and minor; it returns 1 to allow, 0 to deny (EPERM).

// bpfInsn is one eBPF instruction, laid out as struct bpf_insn on a
// little-endian machine: the destination register in the low nibble of
// regs, the source in the high one (the loader swaps them on a
// big-endian one).
type bpfInsn struct {
	code uint8
	regs uint8
	off  int16
	imm  int32
}

// eBPF opcodes: class | operation | source.
const (
	bpfLDX   = 0x01
	bpfALU   = 0x04 // 32-bit
	bpfJMP   = 0x05
	bpfALU64 = 0x07
	bpfW     = 0x00
	bpfMEM   = 0x60
	bpfK     = 0x00
	bpfX     = 0x08
	bpfAND   = 0x50
	bpfRSH   = 0x70
	bpfMOV   = 0xb0
	bpfJNE   = 0x50
	bpfEXIT  = 0x90
)

// The device types and access bits of the program's context.
const (
	devcgBlock = 1
	devcgChar  = 2
	devcgMknod = 1
	devcgRead  = 2
	devcgWrite = 4
)

func ldxW(dst, src uint8, off int16) bpfInsn {
	return bpfInsn{code: bpfLDX | bpfMEM | bpfW, regs: dst | src<<4, off: off}
}
func alu32K(op, dst uint8, imm int32) bpfInsn {
	return bpfInsn{code: bpfALU | op | bpfK, regs: dst, imm: imm}
}
func mov32X(dst, src uint8) bpfInsn {
	return bpfInsn{code: bpfALU | bpfMOV | bpfX, regs: dst | src<<4}
}
func mov64K(dst uint8, imm int32) bpfInsn {
	return bpfInsn{code: bpfALU64 | bpfMOV | bpfK, regs: dst, imm: imm}
}
func jneK(dst uint8, imm int32, off int16) bpfInsn {
	return bpfInsn{code: bpfJMP | bpfJNE | bpfK, regs: dst, imm: imm, off: off}
}
func exit() bpfInsn { return bpfInsn{code: bpfJMP | bpfEXIT} }

// accessBits turns "rwm" into the context's access bits.
func accessBits(access string) int32 {
	var b int32
	for _, c := range access {
		switch c {
		case 'r':
			b |= devcgRead
		case 'w':
			b |= devcgWrite
		case 'm':
			b |= devcgMknod
		}
	}
	return b
}

// deviceProgram returns the program that allows exactly the accesses of
// allow (checked rules) and denies every other:
//
//	r2 = ctx->access_type; r3 = r2 & 0xffff (type); r2 >>= 16 (access)
//	r4 = ctx->major; r5 = ctx->minor
//	per rule: if type, access (r2 & ^rule's == 0), major and minor
//	          match (each test skipped for a wildcard): return 1
//	return 0
func deviceProgram(allow []Device) []bpfInsn {
	prog := []bpfInsn{
		ldxW(2, 1, 0),
		mov32X(3, 2),
		alu32K(bpfAND, 3, 0xffff),
		alu32K(bpfRSH, 2, 16),
		ldxW(4, 1, 4),
		ldxW(5, 1, 8),
	}
	for _, d := range allow {
		// The tests; each jumps past the rest of the rule when it fails
		// (its offset is fixed once the rule's length is known).
		var rule []bpfInsn
		switch d.Type {
		case 'b':
			rule = append(rule, jneK(3, devcgBlock, 0))
		case 'c':
			rule = append(rule, jneK(3, devcgChar, 0))
		}
		if bits := accessBits(d.Access); bits != devcgRead|devcgWrite|devcgMknod {
			rule = append(rule, mov32X(1, 2), alu32K(bpfAND, 1, ^bits&0xffff), jneK(1, 0, 0))
		}
		if d.Major != AnyNumber {
			rule = append(rule, jneK(4, int32(d.Major), 0))
		}
		if d.Minor != AnyNumber {
			rule = append(rule, jneK(5, int32(d.Minor), 0))
		}
		rule = append(rule, mov64K(0, 1), exit())
		for i := range rule {
			if rule[i].code == bpfJMP|bpfJNE|bpfK {
				rule[i].off = int16(len(rule) - i - 1)
			}
		}
		prog = append(prog, rule...)
	}
	return append(prog, mov64K(0, 0), exit())
}
