package vulndb

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxZipEntries bounds the records one zip may hold; the largest OSV
// export has a few hundred thousand.
const maxZipEntries = 2_000_000

// Import reads OSV records from each path into w. A path may be:
//   - a directory laid out as OSV exports are, <Ecosystem>/all.zip;
//   - a zip of OSV JSON records (an all.zip);
//   - a directory of OSV JSON records and zips (searched recursively);
//   - a single OSV JSON record.
//
// A record that does not parse is recorded with w.Reject and the import
// goes on; an unreadable source is an error.
func Import(ctx context.Context, w *Writer, paths ...string) error {
	for _, p := range paths {
		if err := importPath(ctx, w, p); err != nil {
			return err
		}
	}
	return nil
}

func importPath(ctx context.Context, w *Writer, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("importing %s: %w", path, err)
	}
	if !st.IsDir() {
		if strings.HasSuffix(strings.ToLower(path), ".zip") {
			return importZip(ctx, w, path)
		}
		return importJSONFile(w, path, path)
	}
	exports, err := filepath.Glob(filepath.Join(path, "*", "all.zip"))
	if err != nil {
		return fmt.Errorf("importing %s: %w", path, err)
	}
	if len(exports) > 0 {
		sort.Strings(exports)
		for _, z := range exports {
			if err := importZip(ctx, w, z); err != nil {
				return err
			}
		}
		return nil
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("importing %s: %w", p, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		switch strings.ToLower(filepath.Ext(d.Name())) {
		case ".json":
			return importJSONFile(w, p, p)
		case ".zip":
			return importZip(ctx, w, p)
		}
		return nil
	})
}

func importJSONFile(w *Writer, path, source string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("importing %s: %w", path, err)
	}
	defer f.Close()
	return importRecord(w, f, source)
}

// importRecord reads one record of at most MaxRecordSize bytes from r.
func importRecord(w *Writer, r io.Reader, source string) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxRecordSize+1))
	if err != nil {
		return w.Reject(source, "", fmt.Errorf("reading: %w", err))
	}
	rec, err := ParseRecord(data)
	if err != nil {
		return w.Reject(source, idFromJSON(data), err)
	}
	return w.Put(rec)
}

func importZip(ctx context.Context, w *Writer, path string) error {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return fmt.Errorf("importing %s: %w", path, err)
	}
	defer zr.Close()
	if len(zr.File) > maxZipEntries {
		return fmt.Errorf("importing %s: %d entries, more than %d", path, len(zr.File), maxZipEntries)
	}
	for i, f := range zr.File {
		if i%512 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if f.FileInfo().IsDir() || !strings.HasSuffix(strings.ToLower(f.Name), ".json") {
			continue
		}
		source := path + ":" + f.Name
		if f.UncompressedSize64 > MaxRecordSize {
			if err := w.Reject(source, strings.TrimSuffix(filepath.Base(f.Name), ".json"), fmt.Errorf("%w: %d bytes uncompressed", ErrInvalidRecord, f.UncompressedSize64)); err != nil {
				return err
			}
			continue
		}
		rc, err := f.Open()
		if err != nil {
			if err := w.Reject(source, "", fmt.Errorf("opening zip entry: %w", err)); err != nil {
				return err
			}
			continue
		}
		// The entry's declared size may lie; importRecord reads at most
		// MaxRecordSize whatever the header says, and zip checks the CRC.
		err = importRecord(w, rc, source)
		rc.Close()
		if err != nil && !errors.Is(err, ErrInvalidRecord) {
			return err
		}
	}
	return nil
}
