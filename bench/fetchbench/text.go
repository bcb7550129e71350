package main

import (
	"math/rand/v2"
	"strconv"
	"sync"
)

// vocabulary is shared by every text file, as words are shared by the
// sources, docs and configuration files of a real image.
var vocabulary = sync.OnceValue(func() [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	words := [][]byte{}
	for _, k := range []string{"func", "return", "if", "else", "for", "the", "of", "and", "{", "}", "=", ":=", "nil", "err", "int", "string", "//", "#", "include", "static"} {
		words = append(words, []byte(k))
	}
	for len(words) < 4096 {
		w := make([]byte, 2+r.IntN(11))
		for i := range w {
			w[i] = byte('a' + r.IntN(26))
		}
		words = append(words, w)
	}
	return words
})

// textGen makes an endless stream of text-like lines: indented, Zipf-
// distributed words, some numbers. gzip compresses it about 3:1.
type textGen struct {
	r       *rand.Rand
	z       *rand.Zipf
	line    []byte
	pending []byte
}

func newTextGen(seed uint64) *textGen {
	r := rand.New(rand.NewPCG(seed, 0x74657874)) // "text"
	return &textGen{r: r, z: rand.NewZipf(r, 1.1, 4, uint64(len(vocabulary())-1))}
}

// fill fills p with the next bytes of the stream.
func (t *textGen) fill(p []byte) {
	for len(p) > 0 {
		if len(t.pending) == 0 {
			t.line = t.makeLine(t.line[:0])
			t.pending = t.line
		}
		n := copy(p, t.pending)
		p, t.pending = p[n:], t.pending[n:]
	}
}

func (t *textGen) makeLine(b []byte) []byte {
	words := vocabulary()
	for i := t.r.IntN(4); i > 0; i-- {
		b = append(b, '\t')
	}
	for i := 2 + t.r.IntN(10); i > 0; i-- {
		if t.r.IntN(12) == 0 {
			b = strconv.AppendUint(b, t.r.Uint64N(1_000_000), 10)
		} else {
			b = append(b, words[t.z.Uint64()]...)
		}
		if i > 1 {
			b = append(b, ' ')
		}
	}
	return append(b, '\n')
}
