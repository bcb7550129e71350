package stage0

import (
	"strings"
	"testing"

	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/pkg/appcjson"
)

func TestSpecCheck(t *testing.T) {
	for _, tc := range []struct {
		spec PodSpec
		want string // "" = valid
	}{
		{PodSpec{Apps: []AppSpec{{Image: "i", Name: "web-1"}}}, ""},
		{PodSpec{Apps: []AppSpec{{Image: "i", Name: "UPPER"}}}, `--name: "UPPER" is not an app name`},
		{PodSpec{Apps: []AppSpec{{Image: "i", Name: "a/b"}}}, "--name"},
		{PodSpec{Apps: []AppSpec{{Image: "i", Name: "../../x"}}}, "--name"},
		{PodSpec{Apps: []AppSpec{{Image: "i", Name: "-x"}}}, "--name"},
		{PodSpec{Apps: []AppSpec{{Image: "i", Environment: []string{"OK_1.a-b=x y"}}}}, ""},
		{PodSpec{Apps: []AppSpec{{Image: "i", Environment: []string{"1X=1"}}}}, `--environment: "1X=1": "1X" is not a variable name`},
		{PodSpec{SetEnv: []string{"A B=1"}}, `--set-env: "A B=1"`},
		{PodSpec{SetEnv: []string{"NOEQUALS"}}, "want K=V"},
		{PodSpec{SetEnvFile: []string{"export D=1"}}, "--set-env-file"},
		{PodSpec{Hostname: "web-1.example.com"}, ""},
		{PodSpec{Hostname: "Web1"}, ""},
		{PodSpec{Hostname: "a_b"}, `--hostname: "a_b" is not a host name`},
		{PodSpec{Hostname: "-web"}, "--hostname"},
		{PodSpec{Hostname: "web-"}, "--hostname"},
		{PodSpec{Hostname: "a..b"}, "--hostname"},
		{PodSpec{Hostname: "two words"}, "--hostname"},
		{PodSpec{Hostname: "x\nevil"}, "--hostname"},
		{PodSpec{Hostname: strings.Repeat("a", 64)}, "--hostname"},
		{PodSpec{Hostname: strings.Repeat("a.", 126) + "ab"}, "longer than 253"},
	} {
		err := tc.spec.Check()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: err = %v, want %q", tc.spec, err, tc.want)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	lines, err := ParseEnvFile("f", []byte("# c\n\nA=1\n  B=two words  \n"))
	if err != nil || strings.Join(lines, ";") != "A=1;B=two words" {
		t.Errorf("lines = %q, err = %v", lines, err)
	}
	_, err = ParseEnvFile("f", []byte("A=1\nexport D=1\n"))
	if err == nil || !strings.Contains(err.Error(), `f:2: "export D=1"`) || !strings.Contains(err.Error(), "export") {
		t.Errorf("export line: %v", err)
	}
}

func TestCheckLimits(t *testing.T) {
	for _, tc := range []struct {
		iso  string
		want string
	}{
		{`{"name":"resource/memory","value":{"limit":"128M"}}`, ""},
		{`{"name":"resource/memory","value":{"limit":"18446744073714794496"}}`, "out of range"},
		{`{"name":"resource/memory","value":{"limit":"1"}}`, "less than 8Mi"},
		{`{"name":"resource/cpu","value":{"limit":"750m"}}`, ""},
		{`{"name":"resource/cpu","value":{"limit":"1m"}}`, "less than 10m"},
	} {
		var isos types.Isolators
		if err := appcjson.Unmarshal([]byte("["+tc.iso+"]"), &isos); err != nil {
			t.Fatal(err)
		}
		err := checkLimits(&types.App{Isolators: isos})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", tc.iso, err, tc.want)
		}
	}
}

// TestParseEnvFileSystemd: systemd's EnvironmentFile= rules.
func TestParseEnvFileSystemd(t *testing.T) {
	file := strings.Join([]string{
		`# comment`,
		`; another comment \`,
		`  still the comment`,
		`PLAIN=value  `,
		`  SPACED = x  y  `,
		`DQ="two words # not a comment"`,
		`SQ='single $HOME \n'`,
		`ESC="a \"q\" \\ \$ \x"`,
		`CONT=one \`,
		`two`,
		`DQCONT="first \`,
		`second"`,
		`MIXED="quoted"tail`,
		`BS=a\ b\\c`,
		`EMPTY=`,
		`EMPTYQ=""`,
		`MULTI='line1`,
		`line2'`,
		`LAST=no newline`,
	}, "\n")
	got, err := ParseEnvFile("f", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PLAIN=value",
		"SPACED=x  y",
		"DQ=two words # not a comment",
		`SQ=single $HOME \n`,
		`ESC=a "q" \ $ \x`,
		"CONT=one two",
		"DQCONT=first second",
		"MIXED=quotedtail",
		`BS=a b\c`,
		"EMPTY=",
		"EMPTYQ=",
		"MULTI=line1\nline2",
		"LAST=no newline",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("ParseEnvFile:\n got %q\nwant %q", got, want)
	}
	for in, msg := range map[string]string{
		"A=1\nNOEQUALS\n":   `f:2: "NOEQUALS": want NAME=VALUE`,
		"A=\"open\n":        "f:1: a quoted value is not closed",
		"A=1\n1B=2\n":       `f:2: "1B=2"`,
		"A=1\n\nB C=1\n":    `f:3: "B C=1"`,
		"A=1\nexport D=1\n": `drop "export"`,
	} {
		if _, err := ParseEnvFile("f", []byte(in)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseEnvFile(%q): %v, want %q", in, err, msg)
		}
	}
}
