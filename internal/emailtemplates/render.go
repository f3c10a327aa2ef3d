package emailtemplates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	texttemplate "text/template"
)

//go:embed *.html *.txt
var embedded embed.FS

// Errors callers branch on: both mean no retry can render the email.
var (
	// ErrUnknownTemplate: no template (or no such version) of that name.
	ErrUnknownTemplate = errors.New("unknown email template")
	// ErrMissingData: the data lacks a key the template requires, or holds
	// a value the template cannot use.
	ErrMissingData = errors.New("email template data incomplete")
)

// Message is a rendered email.
type Message struct {
	// Template is the template's name ("payment-receipt"), Version its
	// version ("v1").
	Template, Version string
	Subject           string
	HTML              string
	Text              string
}

// Set is a parsed collection of templates.
type Set struct {
	// versions holds each name's versions, oldest first.
	versions map[string][]*template
}

// template is one version of a template, both parts parsed.
type template struct {
	name, version string
	number        int
	html          *htmltemplate.Template
	text          *texttemplate.Template
	required      []string
}

// fileName is a template file's name: <name>.v<N>.<html|txt>.
var fileName = regexp.MustCompile(`^([a-z][a-z0-9-]*)\.v([1-9][0-9]*)\.(html|txt)$`)

// defaultSet is the embedded templates, parsed once; TestEmbeddedTemplates
// keeps them parseable, so a bad file fails the build's tests, not a send.
var defaultSet, defaultErr = Load(embedded)

// Default returns the templates embedded in the binary.
func Default() (*Set, error) { return defaultSet, defaultErr }

// Load parses every template file at the root of fsys. Each version needs
// both parts; a file that does not follow the naming scheme is an error,
// so a misnamed template cannot be silently missing.
func Load(fsys fs.FS) (*Set, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read templates: %w", err)
	}
	parts := map[string]map[string][]byte{} // "name.vN" → "html"/"txt" → content
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("template file %q is not named <name>.v<N>.html or .txt", e.Name())
		}
		content, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read template %s: %w", e.Name(), err)
		}
		key := m[1] + ".v" + m[2]
		if parts[key] == nil {
			parts[key] = map[string][]byte{}
		}
		parts[key][m[3]] = content
	}
	s := &Set{versions: map[string][]*template{}}
	for _, key := range slices.Sorted(maps.Keys(parts)) {
		t, err := parse(key, parts[key])
		if err != nil {
			return nil, err
		}
		s.versions[t.name] = append(s.versions[t.name], t)
	}
	for _, vs := range s.versions {
		slices.SortFunc(vs, func(a, b *template) int { return a.number - b.number })
	}
	return s, nil
}

// parse builds one version from its two parts.
func parse(key string, parts map[string][]byte) (*template, error) {
	name, v, _ := strings.Cut(key, ".v")
	number, _ := strconv.Atoi(v)
	t := &template{name: name, version: "v" + v, number: number}
	if parts["html"] == nil || parts["txt"] == nil {
		return nil, fmt.Errorf("template %s needs both %s.html and %s.txt", key, key, key)
	}
	var err error
	if t.text, err = texttemplate.New(key + ".txt").Funcs(funcs).Parse(string(parts["txt"])); err != nil {
		return nil, fmt.Errorf("parse %s.txt: %w", key, err)
	}
	if t.html, err = htmltemplate.New(key + ".html").Funcs(funcs).Parse(string(parts["html"])); err != nil {
		return nil, fmt.Errorf("parse %s.html: %w", key, err)
	}
	if t.text.Lookup("subject") == nil {
		return nil, fmt.Errorf("%s.txt defines no \"subject\" block", key)
	}
	if t.text.Lookup("required") != nil {
		var b bytes.Buffer
		if err := t.text.ExecuteTemplate(&b, "required", nil); err != nil {
			return nil, fmt.Errorf("%s.txt: \"required\" block: %w", key, err)
		}
		t.required = strings.Fields(b.String())
	}
	return t, nil
}

// Names lists the templates, each with its versions: "welcome.v1".
func (s *Set) Names() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(s.versions)) {
		for _, t := range s.versions[name] {
			out = append(out, t.name+"."+t.version)
		}
	}
	return out
}

// Lookup finds a template: "welcome" is its latest version, "welcome.v1"
// that version. It returns the name and version it found.
func (s *Set) Lookup(name string) (base, version string, err error) {
	t, err := s.lookup(name)
	if err != nil {
		return "", "", err
	}
	return t.name, t.version, nil
}

func (s *Set) lookup(name string) (*template, error) {
	base, v, pinned := strings.Cut(name, ".v")
	vs := s.versions[base]
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownTemplate, name, strings.Join(s.Names(), ", "))
	}
	if !pinned {
		return vs[len(vs)-1], nil
	}
	for _, t := range vs {
		if t.version == "v"+v {
			return t, nil
		}
	}
	return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownTemplate, name, strings.Join(s.Names(), ", "))
}

// Render renders the template name ("welcome", "welcome.v1") with data. A
// missing required key, or data a template function refuses, is
// ErrMissingData.
func (s *Set) Render(name string, data map[string]any) (*Message, error) {
	t, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, key := range t.required {
		if data[key] == nil {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s.%s needs %s", ErrMissingData, t.name, t.version, strings.Join(missing, ", "))
	}
	var subject, text, html bytes.Buffer
	if err := t.text.ExecuteTemplate(&subject, "subject", data); err != nil {
		return nil, fmt.Errorf("%w: %s.%s subject: %v", ErrMissingData, t.name, t.version, err)
	}
	if err := t.text.Execute(&text, data); err != nil {
		return nil, fmt.Errorf("%w: %s.%s text: %v", ErrMissingData, t.name, t.version, err)
	}
	withSubject := maps.Clone(data)
	if withSubject == nil {
		withSubject = map[string]any{}
	}
	withSubject["subject"] = oneLine(subject.String())
	if err := t.html.Execute(&html, withSubject); err != nil {
		return nil, fmt.Errorf("%w: %s.%s html: %v", ErrMissingData, t.name, t.version, err)
	}
	return &Message{Template: t.name, Version: t.version, Subject: withSubject["subject"].(string),
		HTML: html.String(), Text: strings.TrimSpace(text.String()) + "\n"}, nil
}

// oneLine folds a subject onto one line: a header cannot carry a newline,
// and data may hold one.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
