// Package list names the extractors Bulwark ships, in one place, so what
// a scan looks for can be read in one file.
package list

import (
	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/extract/language/dotnet"
	"github.com/bulwarkhq/bulwark/internal/extract/language/gobinary"
	"github.com/bulwarkhq/bulwark/internal/extract/language/java"
	"github.com/bulwarkhq/bulwark/internal/extract/language/npm"
	"github.com/bulwarkhq/bulwark/internal/extract/language/php"
	"github.com/bulwarkhq/bulwark/internal/extract/language/python"
	"github.com/bulwarkhq/bulwark/internal/extract/language/ruby"
	"github.com/bulwarkhq/bulwark/internal/extract/language/rust"
	"github.com/bulwarkhq/bulwark/internal/extract/os/apk"
	"github.com/bulwarkhq/bulwark/internal/extract/os/dpkg"
	"github.com/bulwarkhq/bulwark/internal/extract/os/rpm"
)

// All returns a new instance of every extractor.
func All() []extract.Extractor {
	return []extract.Extractor{
		dpkg.New(),
		apk.New(),
		gobinary.New(),
		npm.New(),
		python.New(),
		java.New(),
		rust.New(),
		ruby.New(),
		dotnet.New(),
		php.New(),
		rpm.New(),
	}
}
