package webhook

import (
	"testing"

	"github.com/bulwarkhq/bulwark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
