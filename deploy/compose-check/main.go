// compose-check loads a docker-compose.yml the way `docker compose config` does (compose-go: the
// Compose Specification schema, interpolation, merge keys, validation) and prints the resolved project
// as JSON. It needs no Docker engine. Exit status 1 with the error on stderr when the file is invalid.
//
//	go run . -f ../../docker-compose.yml -env-file ../compose.env.example
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	file := flag.String("f", "docker-compose.yml", "the compose file")
	envFile := flag.String("env-file", "", "the .env file (for interpolation, and as the services' env_file .env)")
	flag.Parse()

	abs, err := filepath.Abs(*file)
	if err != nil {
		fail(err)
	}
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithName("flowloom"),
		cli.WithResolvedPaths(true),
	}
	if *envFile != "" {
		opts = append(opts, cli.WithEnvFiles(*envFile), cli.WithDotEnv)
	} else {
		opts = append(opts, cli.WithOsEnv)
	}
	options, err := cli.NewProjectOptions([]string{abs}, opts...)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := json.MarshalIndent(project, "", "  ")
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compose-check:", err)
	os.Exit(1)
}
