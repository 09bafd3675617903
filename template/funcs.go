package template

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	texttemplate "text/template"
	"unicode"
	"unicode/utf8"
)

// maxFuncOutput bounds what one function call may produce, before the
// output limit sees it: functions allocate their result first.
const maxFuncOutput = DefaultMaxOutput

// maxFormatWidth bounds printf widths and precisions ("%999999999d"
// would allocate a gigabyte before anything is written).
const maxFormatWidth = 1000

var errFuncOutput = fmt.Errorf("%w: a function result exceeds %d bytes", ErrOutputTooLarge, maxFuncOutput)

// funcs is the whole function set available to templates besides
// text/template's builtins (and, or, not, len, index, slice, eq, ne, lt,
// le, gt, ge, print, println, html, js, urlquery, call). printf is
// replaced by a bounded version. Nothing here reads files, the
// environment, the clock or the network.
var funcs = texttemplate.FuncMap{
	guardFunc: rangeGuard,

	// strings
	"lower":      bound1(strings.ToLower),
	"upper":      bound1(strings.ToUpper),
	"title":      bound1(title),
	"trim":       strings.TrimSpace,
	"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
	"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
	"replace":    replace,
	"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
	"hasPrefix":  func(prefix, s string) bool { return strings.HasPrefix(s, prefix) },
	"hasSuffix":  func(suffix, s string) bool { return strings.HasSuffix(s, suffix) },
	"split":      func(sep, s string) []string { return strings.Split(s, sep) },
	"join":       join,
	"truncate":   truncate,
	"quote":      func(v any) (string, error) { return bounded(strconv.Quote(toString(v))) },
	"squote":     func(v any) (string, error) { return bounded("'" + strings.ReplaceAll(toString(v), "'", `'\''`) + "'") },
	"toString":   func(v any) (string, error) { return bounded(toString(v)) },
	"b64enc":     func(s string) (string, error) { return bounded(base64.StdEncoding.EncodeToString([]byte(s))) },
	"b64dec":     b64dec,
	"sha256sum":  func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) },

	// text/template builtins that can grow their input, replaced by
	// bounded equivalents
	"printf":   printf,
	"print":    func(a ...any) (string, error) { return bounded(fmt.Sprint(a...)) },
	"println":  func(a ...any) (string, error) { return bounded(fmt.Sprintln(a...)) },
	"html":     func(a ...any) (string, error) { return bounded(texttemplate.HTMLEscaper(a...)) },
	"js":       func(a ...any) (string, error) { return bounded(texttemplate.JSEscaper(a...)) },
	"urlquery": func(a ...any) (string, error) { return bounded(texttemplate.URLQueryEscaper(a...)) },

	// values
	"default":  dfault,
	"coalesce": coalesce,
	"required": required,
	"empty":    isEmpty,
	"get":      get,
	"hasKey":   hasKey,
	"list":     func(v ...any) []any { return v },
	"dict":     dict,
	"toJson":   toJSON,
	"fromJson": fromJSON,
	"atoi":     strconv.Atoi,
}

// bounded fails results over maxFuncOutput. Every function whose result
// can be longer than its input goes through it, so one call allocates at
// most a small multiple of the limit and a loop cannot grow a value
// without bound.
func bounded(s string) (string, error) {
	if len(s) > maxFuncOutput {
		return "", errFuncOutput
	}
	return s, nil
}

func bound1(f func(string) string) func(string) (string, error) {
	return func(s string) (string, error) { return bounded(f(s)) }
}

// FuncNames returns the names of the functions templates may call besides
// text/template's builtins, for documentation and tooling.
func FuncNames() []string {
	var names []string
	for k := range funcs {
		if k != guardFunc {
			names = append(names, k)
		}
	}
	return names
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

func replace(old, new, s string) (string, error) {
	n := strings.Count(s, old)
	if len(s)+n*(len(new)-len(old)) > maxFuncOutput {
		return "", errFuncOutput
	}
	return strings.ReplaceAll(s, old, new), nil
}

func join(sep string, v any) (string, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return "", fmt.Errorf("want a list, got %T", v)
	}
	parts := make([]string, rv.Len())
	size := 0
	for i := range parts {
		parts[i] = toString(rv.Index(i).Interface())
		size += len(parts[i]) + len(sep)
		if size > maxFuncOutput {
			return "", errFuncOutput
		}
	}
	return strings.Join(parts, sep), nil
}

func truncate(n int, s string) string {
	if n < 0 {
		n = 0
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

func b64dec(s string) (string, error) {
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

func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("want key/value pairs")
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

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return bounded(string(b))
}

func fromJSON(s string) (any, error) {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, err
	}
	return v, nil
}

// printf is fmt.Sprintf with widths and precisions bounded and explicit
// argument indexes refused, so that a format cannot allocate without
// bound before the output limit sees the result.
func printf(format string, args ...any) (string, error) {
	argi := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && strings.IndexByte("+-# 0", format[i]) >= 0 {
			i++
		}
		for part := 0; part < 2 && i < len(format); part++ {
			if part == 1 {
				if format[i] != '.' {
					break
				}
				i++
			}
			if i < len(format) && format[i] == '[' {
				return "", errors.New("explicit argument indexes are not supported")
			}
			if i < len(format) && format[i] == '*' {
				if argi >= len(args) {
					return "", errors.New("missing argument for *")
				}
				n, ok := args[argi].(int)
				if !ok || n > maxFormatWidth || n < -maxFormatWidth {
					return "", fmt.Errorf("width or precision must be an int of at most %d", maxFormatWidth)
				}
				argi++
				i++
				continue
			}
			start := i
			for i < len(format) && format[i] >= '0' && format[i] <= '9' {
				i++
			}
			if i-start > 4 {
				return "", fmt.Errorf("width or precision over %d", maxFormatWidth)
			}
			if n, _ := strconv.Atoi(format[start:i]); n > maxFormatWidth {
				return "", fmt.Errorf("width or precision over %d", maxFormatWidth)
			}
		}
		if i < len(format) && format[i] == '[' {
			return "", errors.New("explicit argument indexes are not supported")
		}
		if i < len(format) && format[i] != '%' {
			argi++
		}
	}
	return bounded(fmt.Sprintf(format, args...))
}
