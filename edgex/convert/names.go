package convert

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// EdgeX names may hold anything (upper case, '_', '.', '~', spaces,
// unicode) at any length; Kubernetes names are DNS-1123 subdomains of at
// most 253 characters. Imported objects get a Kubernetes name derived from
// the node pool and the EdgeX name. The original is never re-derived from
// it: the caller keeps it in the v1alpha1.EdgeXNameAnnotation annotation.

const (
	maxKubeName = validation.DNS1123SubdomainMaxLength
	// hashLen hex digits (64 bits) of SHA-256 keep distinct EdgeX names
	// distinct even when their readable parts agree ("Cam_01", "cam.01",
	// "CAM-01", and long names cut to the same prefix).
	hashLen = 16
	// maxAlternatives bounds how many names KubeNameAvoiding tries.
	maxAlternatives = 100
)

// KubeName is a valid, stable Kubernetes name for the object EdgeX calls
// edgexName in pool: "<pool>-<edgexName>" when the EdgeX name is already
// lower-case [a-z0-9-] (not starting or ending with '-') and fits, else
// "<pool>-<readable>-<hash>", where readable is the EdgeX name reduced to
// [a-z0-9-] (possibly shortened or empty) and hash comes from the original
// name, so names that reduce alike stay apart.
func KubeName(pool, edgexName string) string {
	if isPlainName(edgexName) && isSubdomain(pool) && len(pool)+1+len(edgexName) <= maxKubeName {
		return pool + "-" + edgexName
	}
	return hashedName(pool, edgexName, "")
}

// PreferredKubeName is the name a person would type for the object EdgeX
// calls edgexName in pool: "<pool>-<edgexName in lower case>" when that is
// a plain name that fits (EdgeX names nearly always have capitals:
// "Random-Boolean-Device"), else KubeName. Unlike KubeName it is not
// collision-free ("Cam-01" and "cam-01" share it), so only
// KubeNameAvoiding hands it out.
func PreferredKubeName(pool, edgexName string) string {
	if lower := strings.ToLower(edgexName); isPlainName(lower) && isSubdomain(pool) && len(pool)+1+len(lower) <= maxKubeName {
		return pool + "-" + lower
	}
	return KubeName(pool, edgexName)
}

// KubeNameAvoiding is PreferredKubeName, unless taken reports that name as
// held by an object of ANOTHER EdgeX name; then it tries, in a fixed
// order, KubeName (hashed unless the EdgeX name is plain) and numbered
// variants of the hashed form, and returns the first one not taken. The
// order depends only on pool and edgexName, so retries and restarts settle
// on the same name (an object keeps the name it was created with: the
// bridge finds it by its EdgeX name afterwards). If every variant is taken
// it returns the last one, and the caller's create reports the conflict.
func KubeNameAvoiding(pool, edgexName string, taken func(string) bool) string {
	candidate := PreferredKubeName(pool, edgexName)
	if !taken(candidate) {
		return candidate
	}
	if exact := KubeName(pool, edgexName); exact != candidate {
		if candidate = exact; !taken(candidate) {
			return candidate
		}
	}
	if hashed := hashedName(pool, edgexName, ""); hashed != candidate {
		if candidate = hashed; !taken(candidate) {
			return candidate
		}
	}
	for n := 2; n <= maxAlternatives; n++ {
		if candidate = hashedName(pool, edgexName, strconv.Itoa(n)); !taken(candidate) {
			return candidate
		}
	}
	return candidate
}

// hashedName is "<prefix>-<readable>-<hash>[-<suffix>]", cut to fit.
func hashedName(pool, edgexName, suffix string) string {
	prefix, poolChanged := poolPrefix(pool)
	hashed := edgexName
	if poolChanged {
		// The prefix no longer tells pools apart, so the hash must.
		hashed = pool + "\x00" + edgexName
	}
	sum := sha256.Sum256([]byte(hashed))
	tail := hex.EncodeToString(sum[:])[:hashLen]
	if suffix != "" {
		tail += "-" + suffix
	}
	budget := maxKubeName - len(tail) - 1
	if prefix != "" {
		budget -= len(prefix) + 1
	}
	readable := strings.TrimRight(truncate(reduceName(edgexName), budget), "-")
	return joinNonEmpty(prefix, readable, tail)
}

// poolPrefix is the pool's name when it is a valid name short enough to
// leave room for a hashed tail, else a reduced, shortened form of it.
func poolPrefix(pool string) (string, bool) {
	limit := maxKubeName - hashLen - 1 - 1 - len("-100")
	if isSubdomain(pool) && len(pool) <= limit {
		return pool, false
	}
	return strings.TrimRight(truncate(reduceName(pool), limit), "-"), true
}

// reduceName keeps lower-cased ASCII letters and digits, turns every other
// run of characters into one '-', and trims '-' from both ends.
func reduceName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r - 'A' + 'a')
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}

// isPlainName reports whether an EdgeX name can be used as it is.
func isPlainName(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isSubdomain(s string) bool {
	return len(validation.IsDNS1123Subdomain(s)) == 0
}

func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) > n {
		return s[:n]
	}
	return s
}

func joinNonEmpty(parts ...string) string {
	kept := parts[:0:0]
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "-")
}
