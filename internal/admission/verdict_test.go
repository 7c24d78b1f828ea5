package admission

import (
	"fmt"
	"testing"

	"github.com/google/cel-go/common/types"
)

func TestOutcomeNamesEachFindingOnce(t *testing.T) {
	var items []string
	for i := range maxFindings + 5 {
		items = append(items, fmt.Sprintf("GHSA-%d (CRITICAL) in minimist", i), fmt.Sprintf("GHSA-%d (CRITICAL) in minimist", i))
	}
	got := outcomeOf("r", types.NewStringList(types.DefaultTypeAdapter, items))
	if !got.fired || len(got.findings) != maxFindings+1 || got.findings[maxFindings] != "and 5 more" {
		t.Fatalf("findings = %q", got.findings)
	}
	if got.findings[0] == got.findings[1] {
		t.Errorf("a finding is named twice: %q", got.findings[:2])
	}
}
