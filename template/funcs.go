package template

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	texttemplate "text/template"
	"unicode"
	"unicode/utf8"
)

// maxFormatWidth bounds printf widths and precisions.
const maxFormatWidth = 1000

// funcs is the whole function set available to templates besides
// text/template's builtins (and, or, not, len, index, slice, eq, ne, lt,
// le, gt, ge, call). print, printf, println, html, js and urlquery are
// replaced by bounded versions. Nothing here reads files, the
// environment, the clock or the network.
//
// A function whose first parameter is *execState gets the Render call's
// budget (see instrument): it estimates what it will allocate and
// charges it before allocating anything.
var funcs = texttemplate.FuncMap{
	stepFunc:  stepGuard,
	guardFunc: rangeGuard,
	printFunc: printGuard,

	// strings
	"lower": func(st *execState, s string) (string, error) {
		return mapCase(st, "lower", s, unicode.ToLower, strings.ToLower)
	},
	"upper": func(st *execState, s string) (string, error) {
		return mapCase(st, "upper", s, unicode.ToUpper, strings.ToUpper)
	},
	"title": func(st *execState, s string) (string, error) { return mapCase(st, "title", s, unicode.ToUpper, title) },
	"trim":  strings.TrimSpace,
	"trimPrefix": func(st *execState, prefix, s string) (string, error) {
		return strings.TrimPrefix(s, prefix), st.work(len(prefix))
	},
	"trimSuffix": func(st *execState, suffix, s string) (string, error) {
		return strings.TrimSuffix(s, suffix), st.work(len(suffix))
	},
	"replace": replace,
	"contains": func(st *execState, sub, s string) (bool, error) {
		return strings.Contains(s, sub), st.work(len(s) + len(sub))
	},
	"hasPrefix": func(st *execState, prefix, s string) (bool, error) {
		return strings.HasPrefix(s, prefix), st.work(len(prefix))
	},
	"hasSuffix": func(st *execState, suffix, s string) (bool, error) {
		return strings.HasSuffix(s, suffix), st.work(len(suffix))
	},
	"split":     split,
	"join":      join,
	"truncate":  truncate,
	"quote":     quote,
	"squote":    squote,
	"toString":  boundedString,
	"b64enc":    b64enc,
	"b64dec":    b64dec,
	"sha256sum": sha256sum,

	// text/template builtins that can grow their input, replaced by
	// bounded equivalents
	"printf":  printf,
	"print":   func(st *execState, a ...any) (string, error) { return sprint(st, "print", fmt.Sprint, a) },
	"println": func(st *execState, a ...any) (string, error) { return sprint(st, "println", fmt.Sprintln, a) },
	"html": func(st *execState, a ...any) (string, error) {
		return escape(st, "html", htmlSize, texttemplate.HTMLEscapeString, a)
	},
	"js": func(st *execState, a ...any) (string, error) {
		return escape(st, "js", jsSize, texttemplate.JSEscapeString, a)
	},
	"urlquery": func(st *execState, a ...any) (string, error) {
		return escape(st, "urlquery", urlQuerySize, url.QueryEscape, a)
	},

	// values
	"default":  dfault,
	"coalesce": coalesce,
	"required": required,
	"empty":    isEmpty,
	"get":      get,
	"hasKey":   hasKey,
	"list":     func(st *execState, v ...any) ([]any, error) { return v, st.work(16 * len(v)) },
	"dict":     dict,
	"toJson":   toJSON,
	"fromJson": fromJSON,
	"atoi":     strconv.Atoi,
}

// stateFuncs names the functions that take the budget as first argument.
var stateFuncs = func() map[string]bool {
	m := map[string]bool{}
	st := reflect.TypeFor[*execState]()
	for name, f := range funcs {
		if t := reflect.TypeOf(f); t.NumIn() > 0 && t.In(0) == st {
			m[name] = true
		}
	}
	return m
}()

// builtinNames are text/template's builtins, for parsing.
var builtinNames = map[string]any{
	"and": true, "or": true, "not": true, "len": true, "index": true, "slice": true, "call": true,
	"eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true,
	"print": true, "printf": true, "println": true, "html": true, "js": true, "urlquery": true,
}

func title(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if up && unicode.IsLetter(r) {
			b.WriteRune(unicode.ToUpper(r))
			up = false
			continue
		}
		up = unicode.IsSpace(r) || r == '-' || r == '_'
		b.WriteRune(r)
	}
	return b.String()
}

// mapCase applies a case mapping after sizing its result.
func mapCase(st *execState, name, s string, r func(rune) rune, f func(string) string) (string, error) {
	if err := st.value(name, mappedSize(s, r)); err != nil {
		return "", err
	}
	return f(s), nil
}

func replace(st *execState, old, new, s string) (string, error) {
	if err := st.work(len(s)); err != nil { // counting
		return "", err
	}
	n := strings.Count(s, old)
	if err := st.value("replace", len(s)+n*(len(new)-len(old))); err != nil {
		return "", err
	}
	return strings.ReplaceAll(s, old, new), nil
}

// split bounds the number of parts before allocating them.
func split(st *execState, sep, s string) ([]string, error) {
	if err := st.work(len(s)); err != nil { // counting
		return nil, err
	}
	n := strings.Count(s, sep) + 1
	if sep == "" {
		n = utf8.RuneCountInString(s)
	}
	if err := st.value(fmt.Sprintf("split into %d parts", n), n*16); err != nil {
		return nil, err
	}
	return strings.Split(s, sep), nil
}

func join(st *execState, sep string, v any) (string, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return "", fmt.Errorf("want a list, got %T", v)
	}
	z := newSizer(st)
	for i := range rv.Len() {
		if !z.add(len(sep)) {
			break
		}
		e := rv.Index(i)
		if e.Kind() == reflect.Interface && !e.IsNil() {
			e = e.Elem()
		}
		if e.Kind() == reflect.String {
			z.add(e.Len())
		} else {
			z.fmtValue(e, vspec, 0)
		}
	}
	size, err := z.finish(st)
	if err != nil {
		return "", err
	}
	if err := st.value("join", size); err != nil {
		return "", err
	}
	parts := make([]string, rv.Len())
	for i := range parts {
		parts[i] = toString(rv.Index(i).Interface())
	}
	return strings.Join(parts, sep), nil
}

// truncate keeps the first n runes of s. It reads only as far as it
// needs; like a []rune conversion, it turns invalid UTF-8 in what it
// keeps into U+FFFD.
func truncate(st *execState, n int, s string) (string, error) {
	n = max(n, 0)
	if err := st.work(min(len(s), 4*n)); err != nil {
		return "", err
	}
	count := 0
	for i := range s {
		if count == n {
			if !utf8.ValidString(s[:i]) {
				return string([]rune(s[:i])), nil
			}
			return s[:i], nil
		}
		count++
	}
	return s, nil
}

func quote(st *execState, v any) (string, error) {
	s, err := boundedString(st, v)
	if err != nil {
		return "", err
	}
	if err := st.value("quote", quoteSize(s)); err != nil {
		return "", err
	}
	return strconv.Quote(s), nil
}

func squote(st *execState, v any) (string, error) {
	s, err := boundedString(st, v)
	if err != nil {
		return "", err
	}
	if err := st.value("squote", len(s)+3*strings.Count(s, "'")+2); err != nil {
		return "", err
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'", nil
}

func b64enc(st *execState, s string) (string, error) {
	if err := st.value("b64enc", base64.StdEncoding.EncodedLen(len(s))+len(s)); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString([]byte(s)), nil
}

func sha256sum(st *execState, s string) (string, error) {
	if err := st.work(2 * len(s)); err != nil { // a copy, and hashing
		return "", err
	}
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:]), nil
}

func b64dec(st *execState, s string) (string, error) {
	if err := st.value("b64dec", 2*base64.StdEncoding.DecodedLen(len(s))); err != nil {
		return "", err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// toString formats a value the way a person expects in a config: numbers
// without exponent, nil as empty.
func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

// boundedString is toString with its result sized first.
func boundedString(st *execState, v any) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	n, err := fmtSize(st, v)
	if err != nil {
		return "", err
	}
	if err := st.value("toString", n); err != nil {
		return "", err
	}
	return toString(v), nil
}

// sprint is print or println with their result sized first.
func sprint(st *execState, name string, f func(...any) string, a []any) (string, error) {
	z := newSizer(st)
	z.add(len(a) + 1) // spaces and newline
	for _, v := range a {
		z.fmtValue(reflect.ValueOf(v), vspec, 0)
	}
	n, err := z.finish(st)
	if err != nil {
		return "", err
	}
	if err := st.value(name, n); err != nil {
		return "", err
	}
	return f(a...), nil
}

// escape is html, js or urlquery: the arguments printed as by print (a
// single string as it is), then escaped.
func escape(st *execState, name string, size func(string) int, f func(string) string, a []any) (string, error) {
	var s string
	if len(a) == 1 {
		if x, ok := a[0].(string); ok {
			s = x
		}
	}
	if s == "" && len(a) > 0 {
		var err error
		if s, err = sprint(st, name, fmt.Sprint, a); err != nil {
			return "", err
		}
	}
	if err := st.value(name, size(s)); err != nil {
		return "", err
	}
	return f(s), nil
}

func isEmpty(v any) bool {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Invalid:
		return true
	case reflect.Slice, reflect.Map, reflect.String, reflect.Array:
		return rv.Len() == 0
	case reflect.Bool:
		return !rv.Bool()
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	}
	return rv.IsZero()
}

// dfault is sprig's default: the value, or def when the value is empty.
// With strict rendering a missing key is still an error; use get.
func dfault(def any, v ...any) any {
	if len(v) == 0 || isEmpty(v[0]) {
		return def
	}
	return v[0]
}

func coalesce(v ...any) any {
	for _, x := range v {
		if !isEmpty(x) {
			return x
		}
	}
	return nil
}

func required(msg string, v any) (any, error) {
	if isEmpty(v) {
		return nil, errors.New(msg)
	}
	return v, nil
}

// get returns m[key], or def (or "") when the key is absent: the way to
// read optional values under strict rendering.
func get(m map[string]any, key string, def ...any) any {
	if v, ok := m[key]; ok {
		return v
	}
	if len(def) > 0 {
		return def[0]
	}
	return ""
}

func hasKey(m map[string]any, key string) bool {
	_, ok := m[key]
	return ok
}

func dict(st *execState, kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("want key/value pairs")
	}
	if err := st.work(64 * len(kv)); err != nil {
		return nil, err
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("key %d is %T, not a string", i/2, kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

func toJSON(st *execState, v any) (string, error) {
	n, err := jsonSize(st, v)
	if err != nil {
		return "", err
	}
	if err := st.value("toJson", n); err != nil {
		return "", err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// fromJSONFactor bounds the bytes decoding allocates per byte of JSON
// ([0,0,...] boxes every number).
const fromJSONFactor = 40

func fromJSON(st *execState, s string) (any, error) {
	if err := st.work(fromJSONFactor * len(s)); err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, err
	}
	return v, nil
}

// printf is fmt.Sprintf with its result sized before formatting:
// widths and precisions are bounded, explicit argument indexes refused,
// and each argument is bounded as formatted by its verb.
func printf(st *execState, format string, args ...any) (string, error) {
	n, err := printfSize(st, format, args)
	if err != nil {
		return "", err
	}
	if err := st.value("printf", n); err != nil {
		return "", err
	}
	return fmt.Sprintf(format, args...), nil
}

var (
	errArgIndex = errors.New("explicit argument indexes are not supported")
	errWidth    = fmt.Errorf("width or precision over %d", maxFormatWidth)
)

// printfSize bounds fmt.Sprintf(format, args...). Without explicit
// argument indexes each argument is formatted once, by the verb it
// pairs with.
func printfSize(st *execState, format string, args []any) (int, error) {
	z := newSizer(st)
	z.add(len(format))
	argi := 0
	// number reads a width or precision: digits, or * taking an int
	// argument.
	number := func(i int) (int, int, error) {
		if i < len(format) && format[i] == '[' {
			return 0, i, errArgIndex
		}
		if i < len(format) && format[i] == '*' {
			if argi >= len(args) {
				return 0, i, errors.New("missing argument for *")
			}
			n, ok := args[argi].(int)
			if !ok || n > maxFormatWidth || n < -maxFormatWidth {
				return 0, i, fmt.Errorf("width or precision must be an int of at most %d", maxFormatWidth)
			}
			argi++
			z.add(12) // %!(BADPREC) for a negative precision
			return n, i + 1, nil
		}
		start := i
		for i < len(format) && format[i] >= '0' && format[i] <= '9' {
			i++
		}
		if i-start > 4 {
			return 0, i, errWidth
		}
		n, _ := strconv.Atoi(format[start:i])
		if n > maxFormatWidth {
			return 0, i, errWidth
		}
		return n, i, nil
	}
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		var s spec
	flags:
		for ; i < len(format); i++ {
			switch format[i] {
			case '+':
				s.plus = true
			case '#':
				s.sharp = true
			case ' ':
				s.space = true
			case '-', '0':
			default:
				break flags
			}
		}
		var err error
		if s.width, i, err = number(i); err != nil {
			return 0, err
		}
		s.width = max(s.width, -s.width) // a negative width pads on the right
		if i < len(format) && format[i] == '.' {
			if s.prec, i, err = number(i + 1); err != nil {
				return 0, err
			}
			s.hasPrecision = s.prec >= 0 // a negative one means none
			s.prec = max(s.prec, 0)
		}
		if i < len(format) && format[i] == '[' {
			return 0, errArgIndex
		}
		if i >= len(format) {
			z.add(16) // %!(NOVERB)
			break
		}
		verb, w := utf8.DecodeRuneInString(format[i:])
		i += w - 1
		s.verb = verb
		if verb == '%' {
			z.add(1 + s.width)
			continue
		}
		if argi >= len(args) {
			z.add(16) // %!d(MISSING)
			continue
		}
		z.add(16 + typeNameLen(args[argi])) // %!d(type=...) for a bad verb
		z.fmtValue(reflect.ValueOf(args[argi]), s, 0)
		argi++
	}
	for ; argi < len(args); argi++ { // %!(EXTRA type=value, ...)
		z.add(16 + typeNameLen(args[argi]))
		z.fmtValue(reflect.ValueOf(args[argi]), vspec, 0)
	}
	return z.finish(st)
}

func typeNameLen(v any) int {
	if v == nil {
		return 5
	}
	return len(reflect.TypeOf(v).String())
}
