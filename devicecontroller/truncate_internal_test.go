package devicecontroller

import (
	"testing"
	"unicode/utf8"
)

// Messages go into conditions and Events, which the API server refuses
// when they are not valid UTF-8: a cut must never split a character.
func TestTruncateKeepsUTF8Whole(t *testing.T) {
	cases := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{name: "short enough", in: "abc", n: 3, want: "abc"},
		{name: "ASCII", in: "abcdef", n: 3, want: "abc..."},
		{name: "cut inside a two-byte character", in: "aéb", n: 2, want: "a..."},
		{name: "cut after a two-byte character", in: "aéb", n: 3, want: "aé..."},
		{name: "cut inside a four-byte character", in: "x😀y", n: 3, want: "x..."},
		{name: "first character too long", in: "😀", n: 2, want: "..."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := truncate(c.in, c.n)
			if got != c.want {
				t.Errorf("truncate(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("truncate(%q, %d) = %q is not valid UTF-8", c.in, c.n, got)
			}
		})
	}
}
