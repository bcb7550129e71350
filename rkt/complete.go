package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/rkt/rkt/pkg/pod"
)

// Shell completion of the arguments that name pods and images (rkt
// completion bash): pod UUIDs and image names from the data directory,
// not file names.

// completePods completes the first argument (every one, with multi) with
// the UUIDs of the pods in the given states (any state if none).
func completePods(multi bool, states ...pod.State) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 && !multi {
			return nil, cobra.ShellCompDirectiveDefault
		}
		pods, err := pod.List(podsDir())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, p := range pods {
			if !strings.HasPrefix(p.UUID, toComplete) {
				continue
			}
			ok := len(states) == 0
			for _, s := range states {
				ok = ok || p.State() == s
			}
			if ok {
				out = append(out, p.UUID+"\t"+string(p.State()))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeImages completes with the names (and IDs) of stored images:
// the first argument only, or every one with all.
func completeImages(all bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 && !all {
			return nil, cobra.ShellCompDirectiveDefault
		}
		return storedImages(toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

func storedImages(prefix string) []string {
	infos, err := storeForReading().List()
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s != "" && !seen[s] && strings.HasPrefix(s, prefix) {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, i := range infos {
		add(i.Name)
		if v := i.Labels["version"]; v != "" {
			add(i.Name + ":" + v)
		}
		if strings.HasPrefix(prefix, "sha512-") {
			add(i.Key)
		}
	}
	return out
}

// setupCompletion attaches the completion functions; run calls it once
// every command exists.
func setupCompletion() {
	for _, c := range []*cobra.Command{cmdStatus, cmdCatManifest, cmdExport, cmdEnter} {
		c.ValidArgsFunction = completePods(false)
	}
	cmdStop.ValidArgsFunction = completePods(true, pod.StateRunning)
	cmdRunPrepared.ValidArgsFunction = completePods(false, pod.StatePrepared)
	cmdRm.ValidArgsFunction = completePods(true, pod.StateExited, pod.StateExitedGarbage, pod.StateGarbage, pod.StatePrepared, pod.StateAbortedPrepare)
	for _, c := range cmdImage.Commands() {
		switch c.Name() {
		case "rm", "verify":
			c.ValidArgsFunction = completeImages(true)
		case "cat-manifest", "export", "extract", "render":
			c.ValidArgsFunction = completeImages(false)
		}
	}
}
