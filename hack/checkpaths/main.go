// Command checkpaths fails when a file in the repository names a path outside
// it. A user clones the repository on its own, with nothing beside it, so a
// test, script or document that climbs out of the root (to a sibling folder
// that exists only on the developers' machines, say) works here and fails
// there. `make lint` runs it over every file git tracks or would track.
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strings"
)

// siblingData names the reference folder that sits beside the repository on
// the developers' machines, as a path or as Go join arguments; it must never
// be named, even inside the root.
var siblingData = regexp.MustCompile(`\.\./shared\b|\bshared/edgex-v3\b|"shared"\s*,\s*"edgex-v3"`)

// climbs matches a relative path that starts by going up: "../../x".
var climbs = regexp.MustCompile(`(?:^|[^\w.])((?:\.\./)+|(?:\.\.\\)+)`)

// joinedParents matches Go code that goes up through filepath.Join-style
// arguments: a run of quoted ".." separated by commas.
var joinedParents = regexp.MustCompile(`"\.\."(?:\s*,\s*"\.\.")*`)

// notAPath marks a line whose parent-folder text is data, not a path the
// code follows (a hostile name in a test, say); the reason follows it.
const notAPath = "checkpaths:not-a-path"

// ownCases is this command's test, which must spell out what it forbids.
const ownCases = "hack/checkpaths/main_test.go"

// violation is one place where a file reaches outside the repository.
type violation struct {
	file string
	line int
	why  string
}

func (v violation) String() string { return fmt.Sprintf("%s:%d: %s", v.file, v.line, v.why) }

// check returns the places in one file, named by its slash-separated path
// from the repository root, that reach outside the root. A relative path
// going up more levels than the file's folder lies below the root climbs
// out; so does a run of ".." arguments in Go code, which joins them onto
// the file's own folder or the root.
func check(file string, content []byte) []violation {
	depth := 0
	if dir := path.Dir(file); dir != "." {
		depth = strings.Count(dir, "/") + 1
	}
	isGo := strings.HasSuffix(file, ".go")
	var out []violation
	for i, line := range strings.Split(string(content), "\n") {
		if siblingData.MatchString(line) {
			out = append(out, violation{file, i + 1, "names the reference folder beside the repository"})
			continue
		}
		if strings.Contains(line, notAPath) {
			continue
		}
		for _, m := range climbs.FindAllStringSubmatch(line, -1) {
			if up := strings.Count(m[1], ".."); up > depth {
				out = append(out, violation{file, i + 1, fmt.Sprintf("%q goes up %d levels from a folder %d below the root", m[1], up, depth)})
			}
		}
		if !isGo {
			continue
		}
		for _, m := range joinedParents.FindAllString(line, -1) {
			if up := strings.Count(m, ".."); up > depth {
				out = append(out, violation{file, i + 1, fmt.Sprintf("joins %d \"..\" from a folder %d below the root", up, depth)})
			}
		}
	}
	return out
}

// repositoryFiles lists what git tracks, and what it would track, from the
// root: the files a clone has.
func repositoryFiles() ([]string, error) {
	out, err := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return nil, fmt.Errorf("list the repository's files with git: %w", err)
	}
	var files []string
	for _, f := range bytes.Split(out, []byte{0}) {
		if len(f) > 0 {
			files = append(files, string(f))
		}
	}
	return files, nil
}

func main() {
	files, err := repositoryFiles()
	if err != nil {
		fmt.Fprintln(os.Stderr, "checkpaths:", err)
		os.Exit(2)
	}
	var found []violation
	for _, f := range files {
		if f == ownCases {
			continue
		}
		content, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue // deleted in the work tree, not yet in the index
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "checkpaths:", err)
			os.Exit(2)
		}
		if bytes.IndexByte(content, 0) >= 0 {
			continue // binary test data has no paths to follow
		}
		found = append(found, check(f, content)...)
	}
	for _, v := range found {
		fmt.Fprintln(os.Stderr, v)
	}
	if len(found) > 0 {
		fmt.Fprintf(os.Stderr, "%d references to paths outside the repository; a clone has nothing beside it\n", len(found))
		os.Exit(1)
	}
}
