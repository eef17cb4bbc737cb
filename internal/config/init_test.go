package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// leafKeys lists every dotted key a Config field can be set through.
func leafKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		key := prefix + f.Tag.Get("yaml")
		if f.Type == reflect.TypeFor[RateLimitSettings]() || f.Type == reflect.TypeFor[PushSettings]() || f.Type == reflect.TypeFor[MediaSettings]() ||
			f.Type == reflect.TypeFor[TURNSettings]() || f.Type == reflect.TypeFor[SupportSettings]() ||
			f.Type == reflect.TypeFor[RefreshTokenSettings]() || f.Type == reflect.TypeFor[EmailSettings]() ||
			f.Type == reflect.TypeFor[OutboundSettings]() || f.Type == reflect.TypeFor[ConnectionSettings]() ||
			f.Type == reflect.TypeFor[ServerNoticesSettings]() || f.Type == reflect.TypeFor[ExperimentalSettings]() {
			keys = append(keys, key)
			keys = append(keys, leafKeys(f.Type, key+".")...)
			continue
		}
		keys = append(keys, key)
	}
	return keys
}

func TestSettingsTableCoversConfig(t *testing.T) {
	var table []string
	for _, s := range settings {
		table = append(table, s.key)
	}
	want := leafKeys(reflect.TypeFor[Config](), "")
	if !reflect.DeepEqual(table, want) {
		t.Errorf("settings table keys\n%v\nConfig fields\n%v", table, want)
	}
}

func TestDefaultFileDocumentsEverySetting(t *testing.T) {
	text := string(DefaultFile(""))
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(text), &root); err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if !s.group && !strings.Contains(text, "# Environment: "+EnvName(s.key)+"\n") &&
			!strings.Contains(text, "# Environment: "+EnvName(s.key)+" (") {
			t.Errorf("generated file does not name %s", EnvName(s.key))
		}
		leaf := s.key[strings.LastIndexByte(s.key, '.')+1:]
		indent := strings.Repeat("  ", strings.Count(s.key, "."))
		// The comment must sit directly above the key it documents.
		idx := strings.Index(text, "\n"+indent+leaf+":")
		if idx < 0 {
			t.Errorf("generated file lacks key %s", s.key)
			continue
		}
		if before := text[:idx]; !strings.HasPrefix(before[strings.LastIndexByte(before, '\n')+1:], indent+"# ") {
			t.Errorf("key %s has no comment directly above it", s.key)
		}
	}
	for line := range strings.Lines(text) {
		if len(strings.TrimRight(line, "\n")) > 80 {
			t.Errorf("line longer than 80 columns: %q", line)
		}
	}
}

func TestDefaultFileRoundTrip(t *testing.T) {
	for _, dir := range []string{"", "./axon-data", "/var/lib/axon", `odd dir: "quoted" # not a comment`, "new\nline", "no"} {
		path := writeFile(t, string(DefaultFile(dir)))
		got, err := Load(path, nil)
		if err != nil {
			t.Fatalf("%q: %v", dir, err)
		}
		want := staticDefaults()
		if dir != "" {
			want.DataDir = dir
		}
		want.fillDefaults()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got\n%+v\nwant\n%+v", dir, got, want)
		}
	}
}

func TestInitDefaultDataDir(t *testing.T) {
	t.Chdir(t.TempDir())
	c, path, err := Init(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("axon-data", "axon.yaml"); path != want {
		t.Errorf("path = %q, want %q", path, want)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Init config =\n%+v\nwant defaults\n%+v", c, Default())
	}
	checkMode(t, "axon-data", 0o700)
	checkMode(t, path, 0o600)
}

func TestInitFromEnv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	env := map[string]string{"AXON_DATA_DIR": dir, "AXON_LOG_LEVEL": "debug"}
	c, path, err := Init(envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "axon.yaml") {
		t.Errorf("path = %q", path)
	}
	want := Default()
	want.DataDir = dir
	want.SigningKeyPath = filepath.Join(dir, "signing.key")
	want.Media.Dir = filepath.Join(dir, "media")
	want.LogLevel = "debug"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got\n%+v\nwant\n%+v", c, want)
	}
	checkMode(t, dir, 0o700)

	// The file records the data dir, so it also works with --config alone.
	c2, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c2.DataDir != dir || c2.LogLevel != "info" {
		t.Errorf("Load(generated) data_dir = %q, log_level = %q", c2.DataDir, c2.LogLevel)
	}
}

func TestInitKeepsExistingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "axon.yaml")
	if err := os.WriteFile(path, []byte("server_name: mine.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := envMap(map[string]string{"AXON_DATA_DIR": dir})
	for range 2 {
		c, _, err := Init(env)
		if err != nil {
			t.Fatal(err)
		}
		if c.ServerName != "mine.example" {
			t.Errorf("server_name = %q, existing file was not used", c.ServerName)
		}
	}
	data, _ := os.ReadFile(path)
	if string(data) != "server_name: mine.example\n" {
		t.Errorf("existing file was rewritten: %q", data)
	}
}

func TestInitReportsBadFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "axon.yaml"), []byte("colour: blue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, path, err := Init(envMap(map[string]string{"AXON_DATA_DIR": dir}))
	if err == nil || !strings.Contains(err.Error(), "config: colour: unknown setting") {
		t.Errorf("error = %v", err)
	}
	if path != filepath.Join(dir, "axon.yaml") {
		t.Errorf("path = %q, want the file that failed", path)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s mode = %o, want %o", path, got, want)
	}
}
