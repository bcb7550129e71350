package podcfg

import (
	"testing"

	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/pkg/appcjson"
)

// FuzzIsolators feeds the isolators of a pod manifest's app (as JSON) to
// applyIsolators: nothing panics, and limits that pass are what the
// kernel's counters can hold (no negative value from a wrapped
// 18446744073714794496).
func FuzzIsolators(f *testing.F) {
	for _, s := range []string{
		`[{"name":"resource/memory","value":{"limit":"128M"}}]`,
		`[{"name":"resource/memory","value":{"limit":"18446744073714794496"}}]`,
		`[{"name":"resource/cpu","value":{"limit":"9223372036854775807"}}]`,
		`[{"name":"resource/cpu","value":{"request":"1","limit":"750m"}}]`,
		`[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_NET_BIND_SERVICE"]}}]`,
		`[{"name":"os/linux/seccomp-remove-set","value":{"set":["@rkt/default-blacklist"],"errno":"ENOTSUP"}}]`,
		`[{"name":"os/linux/oom-score-adj","value":500},{"name":"os/linux/cpu-shares","value":512}]`,
		`[]`,
	} {
		f.Add(s, "")
		f.Add(s, "100")
	}
	f.Fuzz(func(t *testing.T, isoJSON, pids string) {
		var isos types.Isolators
		if appcjson.Unmarshal([]byte(isoJSON), &isos) != nil {
			return
		}
		var ann types.Annotations
		if pids != "" {
			ann.Set(PidsLimitAnnotation, pids)
		}
		l, _, err := applyIsolators(isos, ann, &Options{})
		if err != nil {
			return
		}
		if l.MemoryBytes < 0 || l.CPUMilli < 0 || l.CPUShares < 0 || l.PidsMax < 0 || l.CPUQuota() < 0 {
			t.Fatalf("%s: limits %+v (quota %d): a value wrapped around", isoJSON, l, l.CPUQuota())
		}
	})
}
