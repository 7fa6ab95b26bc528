// Command build is `make image`: it builds the edgebridge image (see
// package image) and writes it as an OCI layout and a loadable tarball.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/edgebridge/edgebridge/hack/image"
)

func main() {
	ref := flag.String("tag", "", "the image's name and tag, as the manifests name it")
	version := flag.String("version", "", "the release, as the bridge's --version prints it")
	layoutDir := flag.String("oci-layout", "bin/image", "directory of the OCI image layout to write")
	tarPath := flag.String("tarball", "bin/image.tar", "tarball to write, for docker load or crane push")
	flag.Parse()
	if *ref == "" || *version == "" {
		fmt.Fprintln(os.Stderr, "build: -tag and -version are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// A cold build of both binaries takes minutes on two busy cores (20
	// were seen); an hour means a stuck toolchain.
	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	if err := run(ctx, *ref, *version, *layoutDir, *tarPath); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, ref, version, layoutDir, tarPath string) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	img, err := image.Build(ctx, image.Options{RepoRoot: root, Version: version})
	if err != nil {
		return err
	}
	if err := image.Write(img, ref, layoutDir, tarPath); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("built %s (%s)\n  OCI layout: %s\n  tarball:    %s (docker load -i, or crane push %s %s)\n",
		ref, digest, layoutDir, tarPath, tarPath, ref)
	return nil
}
