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
		want.DataDir = DefaultDataDir
		if dir != "" {
			want.DataDir = dir
		}
		// Relative paths in a file are taken from its directory.
		if !filepath.IsAbs(want.DataDir) {
			want.DataDir = filepath.Join(filepath.Dir(path), want.DataDir)
		}
		want.fillDefaults()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got\n%+v\nwant\n%+v", dir, got, want)
		}
	}
}

func TestInitDefaultDataDir(t *testing.T) {
	t.Chdir(t.TempDir())
	c, path, created, err := Init(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("axon-data", "axon.yaml"); path != want {
		t.Errorf("path = %q, want %q", path, want)
	}
	want := staticDefaults()
	want.DataDir = "axon-data"
	want.fillDefaults()
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Init config =\n%+v\nwant defaults\n%+v", c, want)
	}
	if created != (Created{DataDir: true, ConfigFile: true}) {
		t.Errorf("created = %+v, want both", created)
	}
	if _, _, created, _ := Init(nil); created != (Created{}) {
		t.Errorf("second Init created = %+v, want nothing", created)
	}
	checkMode(t, "axon-data", 0o700)
	checkMode(t, path, 0o600)
}

func TestInitFromEnv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	env := map[string]string{"AXON_DATA_DIR": dir, "AXON_LOG_LEVEL": "debug"}
	c, path, _, err := Init(envMap(env))
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
		c, _, _, err := Init(env)
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
	_, path, _, err := Init(envMap(map[string]string{"AXON_DATA_DIR": dir}))
	if err == nil || !strings.Contains(err.Error(), "config: colour: unknown setting") {
		t.Errorf("error = %v", err)
	}
	if path != filepath.Join(dir, "axon.yaml") {
		t.Errorf("path = %q, want the file that failed", path)
	}
}

// TestRelativePathsFollowFile: relative paths in a file name places next
// to the file, whatever the working directory; in the environment, places
// in the working directory.
func TestRelativePathsFollowFile(t *testing.T) {
	base := t.TempDir()
	t.Chdir(t.TempDir())
	conf := filepath.Join(base, "conf")
	if err := os.MkdirAll(conf, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(conf, "axon.yaml")
	body := "data_dir: data\nsigning_key_path: keys/s.key\ndatabase: sqlite:db/x.db\n" +
		"media:\n  dir: ../media\napp_service_config_files: [bridge.yaml, /etc/abs.yaml]\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.DataDir, c.SigningKeyPath, c.Database, c.Media.Dir, c.AppServiceConfigFiles[0], c.AppServiceConfigFiles[1]}
	want := []string{filepath.Join(conf, "data"), filepath.Join(conf, "keys/s.key"), "sqlite:" + filepath.Join(conf, "db/x.db"),
		filepath.Join(base, "media"), filepath.Join(conf, "bridge.yaml"), "/etc/abs.yaml"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	// A file that does not set data_dir keeps its data next to itself.
	if err := os.WriteFile(path, []byte("server_name: a.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(path, nil); err != nil || c.DataDir != filepath.Join(conf, "axon-data") ||
		c.SigningKeyPath != filepath.Join(conf, "axon-data", "signing.key") {
		t.Errorf("default data_dir = %q, key %q, %v", c.DataDir, c.SigningKeyPath, err)
	}
	// The environment has no directory: the working directory it is.
	if c, err = Load(path, envMap(map[string]string{"AXON_DATA_DIR": "rel"})); err != nil || c.DataDir != "rel" {
		t.Errorf("AXON_DATA_DIR=rel: data_dir = %q, %v", c.DataDir, err)
	}
}

// TestOldGeneratedFileKeepsItsDataDir: files generated before paths
// followed the file say data_dir: "./axon-data" from inside axon-data.
func TestOldGeneratedFileKeepsItsDataDir(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.MkdirAll("axon-data", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("axon-data/axon.yaml", []byte(`data_dir: "./axon-data"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load("axon-data/axon.yaml", nil)
	if err != nil || c.DataDir != "axon-data" {
		t.Errorf("data_dir = %q, %v; want axon-data", c.DataDir, err)
	}
}

// TestFindCreatesNothing: the commands other than serve read the data
// directory's axon.yaml when there is one and create nothing when not.
func TestFindCreatesNothing(t *testing.T) {
	t.Chdir(t.TempDir())
	c, path, err := Find(nil)
	if err != nil || path != "" || c.DataDir != DefaultDataDir {
		t.Fatalf("Find in an empty directory: %v %q %v", c, path, err)
	}
	if ents, _ := os.ReadDir("."); len(ents) != 0 {
		t.Errorf("Find created %v", ents)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "axon.yaml"), []byte("server_name: found.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, path, err = Find(envMap(map[string]string{"AXON_DATA_DIR": dir}))
	if err != nil || path != filepath.Join(dir, "axon.yaml") || c.ServerName != "found.test" {
		t.Errorf("Find with AXON_DATA_DIR: %q %v", path, err)
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
