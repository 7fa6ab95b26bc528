package convert

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

var hashedTail = regexp.MustCompile(`-[0-9a-f]{16}$`)

func assertValidName(t testing.TB, pool, edgexName, got string) {
	t.Helper()
	if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
		t.Fatalf("KubeName(%q, %.40q) = %q is not a valid name: %v", pool, edgexName, got, errs)
	}
}

func TestKubeName(t *testing.T) {
	long := strings.Repeat("Sensor_", 43) // 301 characters
	cases := []struct {
		name, pool, edgexName string
		want                  string // exact, or a prefix when hashed
		hashed                bool
	}{
		{"a name Kubernetes can hold is kept", "pool-a", "cam-01", "pool-a-cam-01", false},
		{"digits only", "pool-a", "42", "pool-a-42", false},
		{"upper case", "pool-a", "Cam-01", "pool-a-cam-01-", true},
		{"underscore", "pool-a", "cam_01", "pool-a-cam-01-", true},
		{"dot", "pool-a", "cam.01", "pool-a-cam-01-", true},
		{"tilde", "pool-a", "~x", "pool-a-x-", true},
		{"leading dash", "pool-a", "-x", "pool-a-x-", true},
		{"trailing dash", "pool-a", "x-", "pool-a-x-", true},
		{"unicode only", "pool-a", "温度传感器", "pool-a-", true},
		{"mixed unicode", "pool-a", "Température Hall 2", "pool-a-temp-rature-hall-2-", true},
		{"empty", "pool-a", "", "pool-a-", true},
		{"301 characters", "pool-a", long, "pool-a-sensor-sensor-", true},
		{"a plain name too long with its pool", "pool-a", strings.Repeat("a", 250), "pool-a-aaaa", true},
		{"a pool with dots", "edge.pool-1", "cam-01", "edge.pool-1-cam-01", false},
		{"a pool that is no valid name", "Pool_A", "cam-01", "pool-a-cam-01-", true},
		{"a pool of 253 characters", strings.Repeat("p", 253), "cam-01", "ppp", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := KubeName(tc.pool, tc.edgexName)
			assertValidName(t, tc.pool, tc.edgexName, got)
			if tc.hashed {
				if !strings.HasPrefix(got, tc.want) || !hashedTail.MatchString(got) {
					t.Errorf("got %q, want %q...-<16 hex>", got, tc.want)
				}
			} else if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if again := KubeName(tc.pool, tc.edgexName); again != got {
				t.Errorf("not stable: %q then %q", got, again)
			}
		})
	}
}

// edgexNameVariants are names EdgeX accepts that reduce alike, so only
// the hash can keep them apart.
func edgexNameVariants(i int) []string {
	base := fmt.Sprintf("cam-%d", i)
	return []string{
		base, strings.ToUpper(base), strings.ReplaceAll(base, "-", "_"), strings.ReplaceAll(base, "-", "."),
		"~" + base, base + "~", "Cam " + fmt.Sprint(i), base + "温度", base + "🙂", "Ü" + base,
		strings.Repeat("x", 300) + base, strings.Repeat("Y_", 150) + fmt.Sprint(i),
	}
}

func TestKubeNameIsCollisionFreeAndValid(t *testing.T) {
	pools := []string{"pool-a", "edge.hangzhou", strings.Repeat("p", 240)}
	seen := map[string]string{}
	count := 0
	for _, pool := range pools {
		for i := 0; i < 400; i++ {
			for _, name := range edgexNameVariants(i) {
				got := KubeName(pool, name)
				assertValidName(t, pool, name, got)
				key := pool + "\x00" + name
				if other, dup := seen[got]; dup {
					t.Fatalf("%q and %q both map to %q", other, key, got)
				}
				seen[got] = key
				count++
			}
		}
	}
	if count != len(seen) || count < 14000 {
		t.Fatalf("checked %d names, %d distinct", count, len(seen))
	}
}

// Imports get the name a person would type: EdgeX names nearly always
// have capitals, and "pool-a-random-boolean-device" is what `kubectl edit
// device` wants. The hashed form is kept for a real collision.
func TestImportsGetReadableNames(t *testing.T) {
	free := func(string) bool { return false }
	cases := []struct {
		name, edgexName string
		taken           func(string) bool
		want            string // exact, or a prefix when hashed
		hashed          bool
	}{
		{"capitals", "Random-Boolean-Device", free, "pool-a-random-boolean-device", false},
		{"all capitals", "CAM-01", free, "pool-a-cam-01", false},
		{"already plain", "cam-01", free, "pool-a-cam-01", false},
		{"not plain even in lower case", "Cam_01", free, "pool-a-cam-01-", true},
		{"the lower-case name held by another EdgeX name", "Cam-01",
			func(n string) bool { return n == "pool-a-cam-01" }, "pool-a-cam-01-", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := KubeNameAvoiding("pool-a", tc.edgexName, tc.taken)
			assertValidName(t, "pool-a", tc.edgexName, got)
			if tc.hashed {
				if !strings.HasPrefix(got, tc.want) || !hashedTail.MatchString(got) {
					t.Errorf("got %q, want %q...-<16 hex>", got, tc.want)
				}
			} else if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if !tc.hashed && PreferredKubeName("pool-a", tc.edgexName) != got {
				t.Errorf("PreferredKubeName disagrees with the name handed out, %q", got)
			}
		})
	}
}

func TestKubeNameAvoiding(t *testing.T) {
	takenBy := func(names ...string) func(string) bool {
		set := map[string]bool{}
		for _, n := range names {
			set[n] = true
		}
		return func(candidate string) bool { return set[candidate] }
	}
	hashed := hashedName("pool-a", "cam-01", "")

	cases := []struct {
		name  string
		taken func(string) bool
		want  string
	}{
		{"free: the usual name", takenBy(), "pool-a-cam-01"},
		{"usual name taken: the hashed form", takenBy("pool-a-cam-01"), hashed},
		{"both taken: the first numbered variant", takenBy("pool-a-cam-01", hashed), hashed + "-2"},
		{"more taken: the next free variant", takenBy("pool-a-cam-01", hashed, hashed+"-2", hashed+"-3"), hashed + "-4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := KubeNameAvoiding("pool-a", "cam-01", tc.taken)
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			assertValidName(t, "pool-a", "cam-01", got)
			if again := KubeNameAvoiding("pool-a", "cam-01", tc.taken); again != got {
				t.Errorf("not deterministic: %q then %q", got, again)
			}
		})
	}

	calls := 0
	all := KubeNameAvoiding("pool-a", "Cam_01", func(string) bool { calls++; return true })
	assertValidName(t, "pool-a", "Cam_01", all)
	if calls > maxAlternatives+2 {
		t.Errorf("asked %d times; the search must stop", calls)
	}

	// Variants of a long name still fit.
	long := strings.Repeat("z", 300)
	got := KubeNameAvoiding(strings.Repeat("p", 230), long, func(c string) bool { return !strings.HasSuffix(c, "-99") })
	assertValidName(t, "230 p", long, got)
	if !strings.HasSuffix(got, "-99") {
		t.Errorf("got %q, want the 99th variant", got)
	}
}
